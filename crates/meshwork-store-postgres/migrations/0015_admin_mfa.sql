-- A workspace may require two-factor authentication of its owners and admins (OWASP ASVS
-- 4.3.1): with it on, a person without it cannot use an admin's rights there.
ALTER TABLE workspaces ADD COLUMN admin_mfa_required BOOLEAN NOT NULL DEFAULT FALSE;
