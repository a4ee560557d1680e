-- 0201_ledger_txn: ledger transactions posted by a call of the switch's ledger module
-- (host/switch/ledger.h) rather than by a terminal's request (docs/ledger.md). One kind so
-- far: the payee credit of a mobile-number payment (seed 002 [0055]), txn =
-- 'credit:<reference>' (the payment's lookup reference), orig_rkey = the switch request of
-- its debit; written by `possum recon run` in the transaction that marks the payment
-- credited, with its entries. The primary key makes the posting happen once. `possum ledger
-- check` holds a row here as a posted request: it must have entries (rule 3), and entries
-- of a txn that is neither a posted request nor a row here are orphans (rule 4).
CREATE TABLE ledger_txn (
    txn        TEXT PRIMARY KEY CHECK (length(txn) BETWEEN 1 AND 64),
    ttype      TEXT NOT NULL CHECK (ttype IN ('payee_credit')),
    ref        TEXT NOT NULL,
    orig_rkey  TEXT NOT NULL,
    amount     BIGINT NOT NULL CHECK (amount > 0),
    created_ms BIGINT NOT NULL
);
