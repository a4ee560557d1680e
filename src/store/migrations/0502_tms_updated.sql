-- 0502_tms_updated: the tms service keeps a copy of what a check-in needs from the registry
-- (docs/tms.md, "Performance") and refreshes it with the rows changed since it last looked.
CREATE INDEX tms_terminal_updated ON tms_terminal (updated_ms, serial);
