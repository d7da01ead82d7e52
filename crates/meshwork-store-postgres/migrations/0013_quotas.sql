-- Storage quotas (`quotas` in the configuration, OWASP ASVS 12.1.3): each attached file's stored
-- size, so that a workspace's total is read from an index, not from every file's content.
ALTER TABLE crm_blobs ADD COLUMN size_bytes BIGINT NOT NULL DEFAULT 0;
UPDATE crm_blobs SET size_bytes = octet_length(content_sealed);
CREATE INDEX crm_blobs_workspace_size ON crm_blobs (workspace_id, size_bytes);
