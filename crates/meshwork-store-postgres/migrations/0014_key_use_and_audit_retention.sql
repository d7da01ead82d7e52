-- An API key's last use (OWASP ASVS 7.2.1): when, and from which address (sealed with the
-- workspace key, as the key's name is). Written at most once a minute per key and server.
ALTER TABLE api_keys ADD COLUMN last_used_at BIGINT;
ALTER TABLE api_keys ADD COLUMN last_used_from_sealed BYTEA;

-- When the key's creator was told that it expires soon (ASVS 2.3.3), so that it is said once.
ALTER TABLE api_keys ADD COLUMN expiry_warned_at BIGINT;

-- Audit retention (ASVS 8.3.8, `retention.audit_months`): entries older than the configured
-- months are deleted by the daily housekeeping. The log stays append-only for everything
-- younger than 30 days, whatever the code asks: no update ever, and no delete of a recent entry.
CREATE OR REPLACE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE'
        AND OLD.at < (extract(epoch FROM clock_timestamp()) * 1000)::bigint - 2592000000 THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'the audit log is append-only: entries younger than 30 days are never deleted';
END;
$$;
CREATE FUNCTION audit_log_no_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION 'the audit log is append-only: it is never truncated'; END;
$$;
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
FOR EACH STATEMENT EXECUTE FUNCTION audit_log_no_truncate();
CREATE INDEX audit_at ON audit_log (at);
