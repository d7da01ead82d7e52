-- One-time use of TOTP codes: the last accepted 30-second step.
ALTER TABLE users ADD COLUMN totp_last_step INTEGER;
