-- The durable job queue (PostgreSQL dialect; same meaning as migrations/sqlite/0005_jobs.sql).
-- `state`: queued (waiting for `run_at`), running (a worker holds it until `lease_until`),
-- succeeded, failed, cancelled. A running job whose lease expired (its daemon died) is put back
-- in the queue. `tenant_id` NULL: a platform job (admins only). `cancel_requested`: a running
-- job asked to stop at its next checkpoint.
CREATE TABLE jobs (
    id               BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind             TEXT NOT NULL,
    tenant_id        BIGINT REFERENCES tenants(id) ON DELETE CASCADE,
    created_by       TEXT NOT NULL,
    payload          TEXT NOT NULL DEFAULT '{}',
    state            TEXT NOT NULL DEFAULT 'queued'
                     CHECK (state IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
    attempts         BIGINT NOT NULL DEFAULT 0,
    max_attempts     BIGINT NOT NULL DEFAULT 3,
    run_at           TIMESTAMPTZ NOT NULL,
    lease_until      TIMESTAMPTZ,
    worker           TEXT,
    timeout_secs     BIGINT NOT NULL,
    idempotency_key  TEXT,
    cancel_requested BOOLEAN NOT NULL DEFAULT FALSE,
    progress         BIGINT NOT NULL DEFAULT 0 CHECK (progress BETWEEN 0 AND 100),
    message          TEXT,
    result           TEXT,
    error            TEXT,
    created_at       TIMESTAMPTZ NOT NULL,
    updated_at       TIMESTAMPTZ NOT NULL,
    finished_at      TIMESTAMPTZ
);
CREATE UNIQUE INDEX jobs_idempotency_key ON jobs(idempotency_key) WHERE idempotency_key IS NOT NULL;
CREATE INDEX jobs_due ON jobs(state, run_at);
CREATE INDEX jobs_tenant_created ON jobs(tenant_id, created_at);
