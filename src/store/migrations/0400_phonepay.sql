-- 0400_phonepay: mobile-number payment (`phonepay` service, seed 002, docs/phonepay.md).
-- No clear card number is ever stored: a payee's card is AES-CBC encrypted under the HSM
-- data key phonepay.card (card_enc = IV || ciphertext) and bound to the payee's mobile
-- number by an AES-CMAC under phonepay.mac (card_mac); what is shown is first 6 / last 4.
-- One-time codes are kept as CMACs under phonepay.mac, bearer tokens as SHA-256 digests.

-- Payees ([0038], [0044]): one row per mobile number. A registration is 'pending' until
-- the code sent to that number is confirmed (claim 2: the payee is verified first).
CREATE TABLE phonepay_payee (
    mobile      TEXT PRIMARY KEY CHECK (length(mobile) = 11),
    name        TEXT NOT NULL CHECK (length(name) >= 1),
    status      TEXT NOT NULL CHECK (status IN ('pending', 'active', 'suspended')),
    card_enc    BLOB NOT NULL,
    card_mac    BLOB NOT NULL,
    card_masked TEXT NOT NULL,
    created_ms  BIGINT NOT NULL,
    updated_ms  BIGINT NOT NULL
);

-- The one open challenge of a number: a code sent by SMS, stored as a CMAC with a salt.
-- purpose register (activates the payee), card (applies the new card kept here), login
-- (gives a bearer token). attempts counts wrong codes; at otp_attempts_max it is void.
CREATE TABLE phonepay_otp (
    mobile      TEXT PRIMARY KEY CHECK (length(mobile) = 11),
    purpose     TEXT NOT NULL CHECK (purpose IN ('register', 'card', 'login')),
    salt        BLOB NOT NULL,
    digest      BLOB NOT NULL,
    attempts    BIGINT NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    expires_ms  BIGINT NOT NULL,
    card_enc    BLOB,
    card_mac    BLOB,
    card_masked TEXT,
    created_ms  BIGINT NOT NULL
);

-- Bearer tokens given after a confirmation (GET /v1/payees/{mobile}). SHA-256 of the token.
CREATE TABLE phonepay_session (
    token_hash  TEXT PRIMARY KEY CHECK (length(token_hash) = 64),
    mobile      TEXT NOT NULL,
    expires_ms  BIGINT NOT NULL,
    created_ms  BIGINT NOT NULL
);
CREATE INDEX phonepay_session_expiry ON phonepay_session (expires_ms);

-- Lookups answered with a name ([0048]): the reference (field 37 of the 0110) binds the
-- terminal, both numbers and the amount; it is used by at most one payment.
CREATE TABLE phonepay_lookup (
    reference    TEXT PRIMARY KEY CHECK (length(reference) = 12),
    tid          TEXT NOT NULL,
    payee_mobile TEXT NOT NULL,
    payer_mobile TEXT NOT NULL,
    amount_minor BIGINT NOT NULL CHECK (amount_minor >= 0),
    masked_name  TEXT NOT NULL,
    used         BIGINT NOT NULL DEFAULT 0 CHECK (used IN (0, 1)),
    created_ms   BIGINT NOT NULL,
    expires_ms   BIGINT NOT NULL
);
CREATE INDEX phonepay_lookup_expiry ON phonepay_lookup (expires_ms);

-- Payments ([0050]-[0055]): the journal recon matches with the provider's clearing file.
-- The payee's card is copied (still sealed) at payment time, so a later card change does not
-- redirect a payment already made. state: pending (debit sent), approved, declined,
-- reversed, crediting (0220 sent, answer not yet recorded), credited.
CREATE TABLE phonepay_payment (
    reference     TEXT PRIMARY KEY REFERENCES phonepay_lookup (reference),
    tid           TEXT NOT NULL,
    payee_mobile  TEXT NOT NULL,
    payer_mobile  TEXT NOT NULL,
    amount_minor  BIGINT NOT NULL CHECK (amount_minor > 0),
    masked_name   TEXT NOT NULL,
    card_enc      BLOB NOT NULL,
    card_mac      BLOB NOT NULL,
    card_masked   TEXT NOT NULL,
    state         TEXT NOT NULL CHECK (state IN ('pending', 'approved', 'declined', 'reversed',
                                                 'crediting', 'credited')),
    response_code TEXT,
    rrn           TEXT,
    stan          TEXT,
    business_date TEXT,
    recon_date    TEXT,
    credit_stan   TEXT,
    credit_time   TEXT,
    credit_rc     TEXT,
    credit_tries  BIGINT NOT NULL DEFAULT 0,
    created_ms    BIGINT NOT NULL,
    updated_ms    BIGINT NOT NULL
);
CREATE UNIQUE INDEX phonepay_payment_rrn ON phonepay_payment (rrn) WHERE rrn IS NOT NULL;
CREATE INDEX phonepay_payment_date ON phonepay_payment (business_date, state);

-- Contracted banks of the provider by BIN (claim 4, [0053]): a payer card whose first 6..11
-- digits equal a row's bin belongs to a contracted bank.
CREATE TABLE phonepay_bin (
    bin        TEXT PRIMARY KEY CHECK (length(bin) BETWEEN 6 AND 11),
    bank       TEXT NOT NULL CHECK (length(bank) BETWEEN 1 AND 64),
    created_ms BIGINT NOT NULL
);

-- Rate-limit counters (fixed windows), shared by every node.
CREATE TABLE phonepay_rate (
    rkey            TEXT PRIMARY KEY,
    window_start_ms BIGINT NOT NULL,
    hits            BIGINT NOT NULL
);

-- Notifications (the communication unit 24, [0041]): one row per message and channel,
-- delivered by the outbox worker with retries; id is the idempotency key.
CREATE TABLE phonepay_outbox (
    id         TEXT PRIMARY KEY,
    channel    TEXT NOT NULL CHECK (channel IN ('sms', 'webhook')),
    event      TEXT NOT NULL CHECK (event IN ('otp', 'debit', 'credit')),
    recipient  TEXT NOT NULL CHECK (length(recipient) = 11),
    body       TEXT NOT NULL,
    state      TEXT NOT NULL CHECK (state IN ('pending', 'sent', 'failed')),
    attempts   BIGINT NOT NULL DEFAULT 0,
    next_ms    BIGINT NOT NULL,
    last_error TEXT,
    created_ms BIGINT NOT NULL,
    sent_ms    BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX phonepay_outbox_due ON phonepay_outbox (state, next_ms);

-- Counters (STAN of the 0220 credits recon sends).
CREATE TABLE phonepay_counter (
    name TEXT PRIMARY KEY,
    next BIGINT NOT NULL
);
INSERT INTO phonepay_counter (name, next) VALUES ('credit_stan', 1);

-- Reconciliation runs, one row per business day (the last run's figures).
CREATE TABLE phonepay_recon (
    business_date    TEXT PRIMARY KEY,
    file_sha256      TEXT NOT NULL,
    lines            BIGINT NOT NULL,
    matched          BIGINT NOT NULL,
    missing_platform BIGINT NOT NULL,
    missing_provider BIGINT NOT NULL,
    mismatched       BIGINT NOT NULL,
    credited         BIGINT NOT NULL,
    runs             BIGINT NOT NULL,
    first_run_ms     BIGINT NOT NULL,
    last_run_ms      BIGINT NOT NULL
);

-- Differences found by recon: missing on the platform (in the file, not in the journal),
-- missing at the provider (in the journal, not in the file), amount mismatches.
CREATE TABLE phonepay_recon_item (
    business_date   TEXT NOT NULL,
    rrn             TEXT NOT NULL,
    ttype           TEXT NOT NULL,
    kind            TEXT NOT NULL CHECK (kind IN ('missing_platform', 'missing_provider',
                                                  'amount_mismatch')),
    platform_amount BIGINT,
    provider_amount BIGINT,
    found_ms        BIGINT NOT NULL,
    PRIMARY KEY (business_date, rrn, ttype)
);
