-- The durable job queue (SQLite dialect; same meaning as migrations/postgres/0005_jobs.sql).
-- `state`: queued (waiting for `run_at`), running (a worker holds it until `lease_until`),
-- succeeded, failed, cancelled. A running job whose lease expired (its daemon died) is put back
-- in the queue. `tenant_id` NULL: a platform job (admins only). `cancel_requested`: a running
-- job asked to stop at its next checkpoint.
CREATE TABLE jobs (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    kind             TEXT NOT NULL,
    tenant_id        INTEGER REFERENCES tenants(id) ON DELETE CASCADE,
    created_by       TEXT NOT NULL,
    payload          TEXT NOT NULL DEFAULT '{}',
    state            TEXT NOT NULL DEFAULT 'queued'
                     CHECK (state IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    max_attempts     INTEGER NOT NULL DEFAULT 3,
    run_at           TEXT NOT NULL,
    lease_until      TEXT,
    worker           TEXT,
    timeout_secs     INTEGER NOT NULL,
    idempotency_key  TEXT,
    cancel_requested BOOLEAN NOT NULL DEFAULT 0,
    progress         INTEGER NOT NULL DEFAULT 0 CHECK (progress BETWEEN 0 AND 100),
    message          TEXT,
    result           TEXT,
    error            TEXT,
    created_at       TEXT NOT NULL,
    updated_at       TEXT NOT NULL,
    finished_at      TEXT
);
CREATE UNIQUE INDEX jobs_idempotency_key ON jobs(idempotency_key) WHERE idempotency_key IS NOT NULL;
CREATE INDEX jobs_due ON jobs(state, run_at);
CREATE INDEX jobs_tenant_created ON jobs(tenant_id, created_at);
