-- WebAuthn security keys, a second factor beside TOTP (OWASP ASVS 2.3.2). A key's credential
-- (its public key, id and signature counter) and the name its owner gave it are sealed with the
-- account key; `credential_index` is the blind index of the credential id, unique over all
-- accounts, since one authenticator credential must never sign in to two accounts.
CREATE TABLE security_keys (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    credential_index BLOB NOT NULL UNIQUE,
    key_sealed BLOB NOT NULL,
    created_at INTEGER NOT NULL,
    last_used_at INTEGER
) STRICT;
CREATE INDEX security_keys_user ON security_keys (user_id);

-- A single-use token may carry a sealed payload: a WebAuthn ceremony's state, kept on the
-- server (never in the browser) for the 5 minutes the ceremony may take, so that any server
-- of a deployment can finish what another started.
ALTER TABLE tokens ADD COLUMN payload_sealed BLOB;
