-- 0100_hsm: the HSM's named keys (src/hsm/keystore.c, docs/hsm.md).
-- A key is only ever stored as a TR-31 key block under the LMK (key_block). The other
-- columns copy its clear header and check value for listing; loading trusts the block alone
-- (its MAC, and the label bound inside it), so editing a column here changes nothing.
CREATE TABLE hsm_key (
    label         TEXT PRIMARY KEY CHECK (length(label) BETWEEN 1 AND 63),
    key_block     TEXT NOT NULL CHECK (length(key_block) BETWEEN 16 AND 1023),
    kcv           TEXT NOT NULL,
    key_usage     TEXT NOT NULL CHECK (length(key_usage) = 2),
    algorithm     TEXT NOT NULL CHECK (length(algorithm) = 1),
    mode_of_use   TEXT NOT NULL CHECK (length(mode_of_use) = 1),
    exportability TEXT NOT NULL CHECK (exportability IN ('E', 'N', 'S')),
    key_length    INTEGER NOT NULL,
    lmk_check     TEXT NOT NULL,
    created_ms    BIGINT NOT NULL
);
