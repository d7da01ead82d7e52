-- An API key's last use (OWASP ASVS 7.2.1): when, and from which address (sealed with the
-- workspace key, as the key's name is). Written at most once a minute per key and server.
ALTER TABLE api_keys ADD COLUMN last_used_at INTEGER;
ALTER TABLE api_keys ADD COLUMN last_used_from_sealed BLOB;

-- When the key's creator was told that it expires soon (ASVS 2.3.3), so that it is said once.
ALTER TABLE api_keys ADD COLUMN expiry_warned_at INTEGER;

-- Audit retention (ASVS 8.3.8, `retention.audit_months`): entries older than the configured
-- months are deleted by the daily housekeeping. The log stays append-only for everything
-- younger than 30 days, whatever the code asks: no update ever, and no delete of a recent entry.
DROP TRIGGER audit_log_no_delete;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
WHEN OLD.at >= CAST(strftime('%s', 'now') AS INTEGER) * 1000 - 2592000000
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only: entries younger than 30 days are never deleted'); END;
CREATE INDEX audit_at ON audit_log (at);
