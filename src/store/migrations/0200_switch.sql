-- 0200_switch: the transaction platform (`switch` service, docs/switch.md) and its
-- double-entry ledger (docs/ledger.md). No clear PAN, track data, PIN block or clear key is
-- ever stored: keys are key blocks under the LMK, PANs are masked, and the provider message
-- kept for a later reversal is encrypted under the switch's data key (HSM key switch.dek).

-- Terminals and their session. The TMK and the work keys are key blocks under the LMK.
-- key_version grows at every sign-on, so a node that cached older keys notices.
-- batch_date is the UTC date (YYYYMMDD) the open batch was opened: with TID, MID, STAN and
-- batch it identifies a request (switch_request.rkey).
CREATE TABLE switch_terminal (
    tid            TEXT PRIMARY KEY CHECK (length(tid) = 8),
    mid            TEXT NOT NULL CHECK (length(mid) = 15),
    name           TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 64),
    tmk_block      TEXT NOT NULL,
    tmk_kcv        TEXT NOT NULL,
    status         TEXT NOT NULL CHECK (status IN ('active', 'disabled')),
    update_waiting BIGINT NOT NULL DEFAULT 0 CHECK (update_waiting IN (0, 1)),
    signed_on      BIGINT NOT NULL DEFAULT 0 CHECK (signed_on IN (0, 1)),
    batch_no       BIGINT NOT NULL DEFAULT 0 CHECK (batch_no BETWEEN 0 AND 999999),
    batch_date     TEXT NOT NULL DEFAULT '',
    batch_open     BIGINT NOT NULL DEFAULT 0 CHECK (batch_open IN (0, 1)),
    key_version    BIGINT NOT NULL DEFAULT 0,
    pik_block      TEXT,
    mak_block      TEXT,
    tdk_block      TEXT,
    signon_ms      BIGINT NOT NULL DEFAULT 0,
    created_ms     BIGINT NOT NULL,
    updated_ms     BIGINT NOT NULL
);
CREATE INDEX switch_terminal_mid ON switch_terminal (mid);

-- Batches: opened by a sign-on, settled by 0500 (result 1 balanced, 2 not) or closed by the
-- next sign-on without a settlement. term_* are the terminal's totals, sw_* ours.
CREATE TABLE switch_batch (
    tid                TEXT NOT NULL REFERENCES switch_terminal (tid),
    batch_no           BIGINT NOT NULL,
    mid                TEXT NOT NULL,
    batch_date         TEXT NOT NULL CHECK (length(batch_date) = 8),
    state              TEXT NOT NULL CHECK (state IN ('open', 'settled', 'closed')),
    opened_ms          BIGINT NOT NULL,
    closed_ms          BIGINT NOT NULL DEFAULT 0,
    result             BIGINT NOT NULL DEFAULT 0 CHECK (result IN (0, 1, 2)),
    term_debit_count   BIGINT NOT NULL DEFAULT 0,
    term_debit_amount  BIGINT NOT NULL DEFAULT 0,
    term_credit_count  BIGINT NOT NULL DEFAULT 0,
    term_credit_amount BIGINT NOT NULL DEFAULT 0,
    sw_debit_count     BIGINT NOT NULL DEFAULT 0,
    sw_debit_amount    BIGINT NOT NULL DEFAULT 0,
    sw_credit_count    BIGINT NOT NULL DEFAULT 0,
    sw_credit_amount   BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (tid, batch_no)
);

-- Every request that reached a decision, and every one in flight to the provider.
-- rkey = TID|batch|batch_date|kind|STAN|MID (kind F financial 0100/0200, R reversal 0400,
-- S settlement 0500, U batch upload 0320): one index serves duplicate detection and, by
-- its prefix TID|batch|date|kind|, a batch's requests (settlement, reports). It compares as
-- bytes on both backends (COLLATE "C" on PostgreSQL), so the prefix range is exact.
-- req_hash is SHA-256 of the request from the MTI to field 63; rsp the exact response sent
-- (TPDU onwards), replayed to a retransmission. state: pending (claimed, at the provider),
-- done (answered), failed (no answer was ever sent: a crash or a store failure while
-- pending), void (a tombstone: reversed before it arrived). undone_by: the void or reversal
-- that undid this request, set once. ref: a mobile-number payment's lookup reference. fee: the fee its posting carried (a void or reversal
-- copies its original's), so an undo negates exactly what was posted.
-- Hot inserts append to the table; the only index written at a random place is rkey's.
CREATE TABLE switch_request (
-- @sqlite
    rkey       TEXT PRIMARY KEY,
-- @postgres
    rkey       TEXT COLLATE "C" PRIMARY KEY,
-- @all
    tid        TEXT NOT NULL,
    mid        TEXT NOT NULL,
    stan       TEXT NOT NULL CHECK (length(stan) = 6),
    batch_no   BIGINT NOT NULL,
    batch_date TEXT NOT NULL,
    kind       TEXT NOT NULL CHECK (kind IN ('F', 'R', 'S', 'U')),
    ttype      TEXT NOT NULL,
    state      TEXT NOT NULL CHECK (state IN ('pending', 'done', 'failed', 'void')),
    req_hash   BLOB,
    amount     BIGINT NOT NULL DEFAULT 0 CHECK (amount >= 0),
    fee        BIGINT NOT NULL DEFAULT 0 CHECK (fee >= 0),
    rc         TEXT,
    rsp        BLOB,
    rrn        TEXT,
    auth_code  TEXT,
    pan_masked TEXT,
    orig_rkey  TEXT,
    ref        TEXT,
    undone_by  TEXT,
    posted     BIGINT NOT NULL DEFAULT 0 CHECK (posted IN (0, 1)),
    prov_stan  TEXT,
    prov_time  TEXT,
    prov_blob  BLOB,
    owner      TEXT NOT NULL,
    node       TEXT NOT NULL,
    created_ms BIGINT NOT NULL,
    updated_ms BIGINT NOT NULL
);
CREATE INDEX switch_request_pending ON switch_request (state, node) WHERE state = 'pending';
CREATE INDEX switch_request_rrn ON switch_request (rrn);

-- Reversals owed to the provider (0420, repeated as 0421 until a 0430 comes): the message
-- is rebuilt from switch_request.prov_blob. Survives a crash; deleted when answered.
CREATE TABLE switch_outbox (
    rkey       TEXT PRIMARY KEY REFERENCES switch_request (rkey),
    reason     TEXT NOT NULL CHECK (length(reason) = 2),
    attempts   BIGINT NOT NULL DEFAULT 0,
    next_ms    BIGINT NOT NULL,
    created_ms BIGINT NOT NULL
);
CREATE INDEX switch_outbox_due ON switch_outbox (next_ms);

-- What a terminal listed in its batch upload (0320) after an unbalanced settlement.
CREATE TABLE switch_upload (
    tid        TEXT NOT NULL,
    batch_no   BIGINT NOT NULL,
    stan       TEXT NOT NULL CHECK (length(stan) = 6),
    amount     BIGINT NOT NULL CHECK (amount >= 0),
    proc       TEXT NOT NULL CHECK (length(proc) = 6),
    created_ms BIGINT NOT NULL,
    PRIMARY KEY (tid, batch_no, stan)
);

-- Counters shared by every node (retrieval reference numbers are taken in blocks).
CREATE TABLE switch_counter (
    name TEXT PRIMARY KEY,
    next BIGINT NOT NULL
);
INSERT INTO switch_counter (name, next) VALUES ('rrn', 1);

-- The ledger: accounts and their entries (amount > 0 debit, < 0 credit, fen). Every
-- transaction (txn = the rkey of the request that posted it) sums to zero and every
-- balance equals the sum of its account's entries (`possum ledger check`, docs/ledger.md).
CREATE TABLE ledger_account (
    id         TEXT PRIMARY KEY CHECK (length(id) BETWEEN 1 AND 64),
    kind       TEXT NOT NULL CHECK (kind IN ('asset', 'liability', 'income', 'expense')),
    balance    BIGINT NOT NULL DEFAULT 0,
    currency   TEXT NOT NULL DEFAULT '156',
    created_ms BIGINT NOT NULL,
    updated_ms BIGINT NOT NULL
);

-- Entries are appended (id in posting order); nothing indexes them at random places. The
-- check and the reports scan them. Exactly once is the request's: a request's state moves
-- once (pending -> done, undone_by NULL -> set) in the transaction that posts.
-- @sqlite
CREATE TABLE ledger_entry (
    id         INTEGER PRIMARY KEY,
-- @postgres
CREATE TABLE ledger_entry (
    id         BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
-- @all
    txn        TEXT NOT NULL,
    leg        BIGINT NOT NULL CHECK (leg BETWEEN 0 AND 7),
    account    TEXT NOT NULL REFERENCES ledger_account (id),
    amount     BIGINT NOT NULL CHECK (amount <> 0),
    ttype      TEXT NOT NULL,
    created_ms BIGINT NOT NULL
);
