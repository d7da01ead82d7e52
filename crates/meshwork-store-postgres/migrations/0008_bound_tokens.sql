-- A verification link verifies the address it was sent to, and only while the account still has
-- it (security finding 12); an email change's link carries the new address, sealed, and moves
-- the account to it when it is opened.
ALTER TABLE tokens ADD COLUMN email_index BYTEA;
ALTER TABLE tokens ADD COLUMN email_sealed BYTEA;
