-- 0001_core: tables every possum database has.
-- schema_version itself is created by the store before any migration runs.

-- Small facts about this database (its identity, its purpose), one row per key.
CREATE TABLE possum_meta (
    key        TEXT PRIMARY KEY CHECK (length(key) BETWEEN 1 AND 64),
    value      TEXT NOT NULL,
    updated_ms BIGINT NOT NULL
);
