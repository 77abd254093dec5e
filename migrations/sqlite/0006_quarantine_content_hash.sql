-- The content hash (mail::hash::content_sha256_hex) of a quarantined message: the same
-- bad message with other line endings (piped with LF, then fetched over IMAP with CRLF)
-- is the same problem, not a second one. Filled in for older entries at startup.
ALTER TABLE quarantine ADD COLUMN content_sha256 TEXT;
CREATE INDEX quarantine_open_content ON quarantine (content_sha256) WHERE resolved_at IS NULL;
