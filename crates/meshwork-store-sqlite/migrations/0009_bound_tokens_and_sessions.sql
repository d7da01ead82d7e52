-- A verification link verifies the address it was sent to, and only while the account still has
-- it (security finding 12); an email change's link carries the new address, sealed, and moves
-- the account to it when it is opened.
ALTER TABLE tokens ADD COLUMN email_index BLOB;
ALTER TABLE tokens ADD COLUMN email_sealed BLOB;

-- Sessions (security finding 11): when each was last used, for the idle timeout, and where it
-- was started (user agent and address, sealed with the account key), for the list of one's
-- sessions.
ALTER TABLE sessions ADD COLUMN last_seen_at INTEGER NOT NULL DEFAULT 0;
ALTER TABLE sessions ADD COLUMN client_sealed BLOB;
UPDATE sessions SET last_seen_at = created_at;
