-- Mail from a staff address that could not be proven to come from that staff member:
-- stored as an internal message and marked, never relayed, no commands run.
ALTER TABLE messages ADD COLUMN unverified INTEGER NOT NULL DEFAULT 0;
