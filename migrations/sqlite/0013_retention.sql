-- Retention (retention.raw_days): the original bytes of messages on tickets closed long
-- ago are purged; the parsed message stays and says when its original went.
ALTER TABLE messages ADD COLUMN raw_purged_at INTEGER;
-- What still refers to a raw message or an attachment's content, looked up per row when
-- the purge deletes what nothing refers to any more.
CREATE INDEX messages_raw ON messages (raw_sha256);
CREATE INDEX quarantine_raw ON quarantine (raw_sha256);
CREATE INDEX attachments_sha256 ON attachments (sha256);
