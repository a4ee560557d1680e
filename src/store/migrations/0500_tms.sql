-- 0500_tms: the terminal management system (`tms` service, docs/tms.md, seed 000).
-- No clear key is stored: a terminal's download master key (DMK) and a session's download
-- work key (DWK) are key blocks under the LMK; session tokens are stored as SHA-256 hashes.

-- The registry. installed is the canonical JSON object {name: version} the terminal last
-- reported; schedule '' = the service's default.
CREATE TABLE tms_terminal (
    serial          TEXT PRIMARY KEY CHECK (length(serial) BETWEEN 1 AND 32),
    model           TEXT NOT NULL CHECK (length(model) BETWEEN 1 AND 64),
    merchant        TEXT NOT NULL DEFAULT '',
    tid             TEXT NOT NULL DEFAULT '',
    schedule        TEXT NOT NULL DEFAULT '',
    installed       TEXT NOT NULL DEFAULT '{}',
    dmk_block       TEXT,
    dmk_kcv         TEXT NOT NULL DEFAULT '',
    last_contact_ms BIGINT NOT NULL DEFAULT 0,
    created_ms      BIGINT NOT NULL,
    updated_ms      BIGINT NOT NULL
);
CREATE INDEX tms_terminal_model ON tms_terminal (model, serial);

CREATE TABLE tms_terminal_group (
    serial TEXT NOT NULL REFERENCES tms_terminal (serial),
    grp    TEXT NOT NULL CHECK (length(grp) BETWEEN 1 AND 64),
    PRIMARY KEY (serial, grp)
);
CREATE INDEX tms_terminal_group_grp ON tms_terminal_group (grp, serial);

-- Metadata records as their signers wrote them (the bytes terminals hash): root records by
-- version, and the timestamp records the service signs.
CREATE TABLE tms_meta (
    role       TEXT NOT NULL CHECK (role IN ('root', 'timestamp')),
    version    BIGINT NOT NULL CHECK (version >= 1),
    body       TEXT NOT NULL,
    expires_ms BIGINT NOT NULL,
    created_ms BIGINT NOT NULL,
    PRIMARY KEY (role, version)
);

-- Releases: the package, its signed targets record, and its file in chunks (tms_blob) keyed
-- by the file's SHA-256, so every node can serve it.
CREATE TABLE tms_package (
    name        TEXT NOT NULL,
    version     TEXT NOT NULL,
    version_num BIGINT NOT NULL,
    kind        TEXT NOT NULL CHECK (kind IN ('app', 'params')),
    models      TEXT NOT NULL,
    length      BIGINT NOT NULL CHECK (length > 0),
    sha256      TEXT NOT NULL CHECK (length(sha256) = 64),
    meta        TEXT NOT NULL,
    meta_sha256 TEXT NOT NULL CHECK (length(meta_sha256) = 64),
    created_ms  BIGINT NOT NULL,
    PRIMARY KEY (name, version)
);

CREATE TABLE tms_blob (
    sha256 TEXT NOT NULL,
    seq    BIGINT NOT NULL CHECK (seq >= 0),
    data   BLOB NOT NULL,
    PRIMARY KEY (sha256, seq)
);

-- Campaigns. waves: cumulative percentages "10,50,100"; selector: canonical JSON
-- {"all":bool,"groups":[...],"models":[...],"serials":N}; window minutes after 00:00 UTC
-- (-1, -1 = any time).
CREATE TABLE tms_campaign (
    name             TEXT PRIMARY KEY,
    pkg_name         TEXT NOT NULL,
    pkg_version      TEXT NOT NULL,
    selector         TEXT NOT NULL,
    waves            TEXT NOT NULL,
    start_ms         BIGINT NOT NULL,
    window_start_min BIGINT NOT NULL,
    window_end_min   BIGINT NOT NULL,
    max_failure_pct  BIGINT NOT NULL CHECK (max_failure_pct BETWEEN 0 AND 100),
    advance_pct      BIGINT NOT NULL CHECK (advance_pct BETWEEN 1 AND 100),
    wave_min_ms      BIGINT NOT NULL,
    state            TEXT NOT NULL CHECK (state IN ('draft', 'running', 'paused', 'halted',
                                                    'completed')),
    reason           TEXT NOT NULL DEFAULT '',
    current_wave     BIGINT NOT NULL DEFAULT 0,
    wave_opened_ms   BIGINT NOT NULL DEFAULT 0,
    total            BIGINT NOT NULL DEFAULT 0,
    created_ms       BIGINT NOT NULL,
    updated_ms       BIGINT NOT NULL,
    FOREIGN KEY (pkg_name, pkg_version) REFERENCES tms_package (name, version)
);

-- The serials a campaign lists (its "list" selector), kept until it starts.
CREATE TABLE tms_campaign_serial (
    campaign TEXT NOT NULL REFERENCES tms_campaign (name),
    serial   TEXT NOT NULL,
    PRIMARY KEY (campaign, serial)
);

-- One row per terminal a started campaign reaches. flagged: 0 the switch is still to be
-- asked, 1 asked, 2 nothing to ask (no TID, or the switch does not know it).
CREATE TABLE tms_target (
    campaign   TEXT NOT NULL REFERENCES tms_campaign (name),
    serial     TEXT NOT NULL REFERENCES tms_terminal (serial),
    wave       BIGINT NOT NULL CHECK (wave >= 1),
    state      TEXT NOT NULL CHECK (state IN ('scheduled', 'pending', 'offered', 'downloaded',
                                              'deferred', 'installed', 'failed', 'rolled_back',
                                              'skipped')),
    flagged    BIGINT NOT NULL DEFAULT 0 CHECK (flagged IN (0, 1, 2)),
    reason     TEXT NOT NULL DEFAULT '',
    updated_ms BIGINT NOT NULL,
    PRIMARY KEY (campaign, serial)
);
CREATE INDEX tms_target_serial ON tms_target (serial, state);
CREATE INDEX tms_target_wave ON tms_target (campaign, wave, state);
CREATE INDEX tms_target_unflagged ON tms_target (campaign, serial) WHERE flagged = 0 AND
    state = 'pending';
CREATE INDEX tms_target_flagged ON tms_target (campaign, serial) WHERE flagged = 1 AND
    state = 'pending';

-- Mutual authentication sessions (claim 4). state: challenged (TAC sent, SAC awaited), open
-- (SAC verified: the token may download and report until expires_ms), failed (one wrong
-- SAC ends a session).
CREATE TABLE tms_session (
    id         TEXT PRIMARY KEY CHECK (length(id) = 32),
    serial     TEXT NOT NULL REFERENCES tms_terminal (serial),
    state      TEXT NOT NULL CHECK (state IN ('challenged', 'open', 'failed')),
    dwk_block  TEXT NOT NULL,
    s_data     TEXT NOT NULL,
    token_hash TEXT UNIQUE,
    created_ms BIGINT NOT NULL,
    expires_ms BIGINT NOT NULL
);
CREATE INDEX tms_session_serial ON tms_session (serial, created_ms);
CREATE INDEX tms_session_expires ON tms_session (expires_ms);

-- What terminals reported, in order (the history behind tms_target's state).
CREATE TABLE tms_report (
    serial      TEXT NOT NULL,
    campaign    TEXT NOT NULL,
    seq         BIGINT NOT NULL,
    status      TEXT NOT NULL CHECK (status IN ('downloaded', 'installed', 'failed',
                                                'rolled_back', 'deferred')),
    version     TEXT NOT NULL,
    reason      TEXT NOT NULL DEFAULT '',
    at_ms       BIGINT NOT NULL,
    PRIMARY KEY (serial, campaign, seq)
);
