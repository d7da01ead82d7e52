-- One durable queue for all background work (DESIGN.md decision 8): each row is a job with a
-- kind, a payload (sealed when it holds personal data), a state, attempts, the time it may next
-- run, and the lease of the runner working on it. A runner that dies leaves its lease to expire;
-- another takes the job over (claims use FOR UPDATE SKIP LOCKED). `unique_key` makes a periodic
-- job's run in one period a single row however many servers try to schedule it.
CREATE TABLE job_queue (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    workspace_id TEXT REFERENCES workspaces (id) ON DELETE CASCADE,
    payload BYTEA NOT NULL,
    payload_sealed BOOLEAN NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    max_attempts INTEGER NOT NULL,
    run_at BIGINT NOT NULL,
    lease_holder TEXT,
    lease_until BIGINT,
    error_sealed BYTEA,
    unique_key TEXT UNIQUE,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX job_queue_due ON job_queue (state, run_at);
CREATE INDEX job_queue_workspace ON job_queue (workspace_id, created_at);

-- Mail is sent by one job per message; the job's id is the mail's. Mail queued before this
-- migration gets its job here.
INSERT INTO job_queue (id, kind, workspace_id, payload, payload_sealed, state, attempts, max_attempts, run_at, created_at, updated_at)
    SELECT id, 'mail.send', NULL, convert_to('{"mail":"' || id || '"}', 'UTF8'), FALSE, 'queued', 0, 12, created_at, created_at, created_at
    FROM outbox WHERE sent_at IS NULL;
