-- 0501_tms_installed: when tms_terminal.installed was last learnt. A check-in's registry write
-- is batched (docs/tms.md); it must not put back versions older than what a report (written
-- at once) has recorded since.
ALTER TABLE tms_terminal ADD COLUMN installed_ms BIGINT NOT NULL DEFAULT 0;
