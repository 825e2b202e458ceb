-- Change marks (PostgreSQL dialect; same meaning as migrations/sqlite/0007_dashboard.sql): a
-- note that objects of `kind` in `tenant` changed, for writes that have no audit row of their
-- own (the outcome of a host apply: a site's status and applied time). Caches in every process
-- read them after the audit rows to know what to drop (docs/cache.md). Only the newest rows
-- matter: writers prune the old ones as they go.
CREATE TABLE change_marks (
    seq     BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant  TEXT NOT NULL,
    kind    TEXT NOT NULL
);

-- What `dashboard` and `server list` count (docs/benchmarks.md): a server's sites (without it,
-- each server's count scanned every site), a tenant's sites by status, and the newest apply.
CREATE INDEX sites_server ON sites(server_id);
CREATE INDEX sites_tenant_status ON sites(tenant_id, status);
CREATE INDEX sites_applied ON sites(applied_at);
CREATE INDEX sites_tenant_applied ON sites(tenant_id, applied_at);
