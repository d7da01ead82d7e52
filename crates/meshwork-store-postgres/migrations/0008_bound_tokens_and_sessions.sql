-- A verification link verifies the address it was sent to, and only while the account still has
-- it (security finding 12); an email change's link carries the new address, sealed, and moves
-- the account to it when it is opened.
ALTER TABLE tokens ADD COLUMN email_index BYTEA;
ALTER TABLE tokens ADD COLUMN email_sealed BYTEA;

-- Sessions (security finding 11): when each was last used, for the idle timeout, and where it
-- was started (user agent and address, sealed with the account key), for the list of one's
-- sessions.
ALTER TABLE sessions ADD COLUMN last_seen_at BIGINT NOT NULL DEFAULT 0;
ALTER TABLE sessions ADD COLUMN client_sealed BYTEA;
UPDATE sessions SET last_seen_at = created_at;
