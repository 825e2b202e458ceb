-- vipanel schema v10 (SQLite dialect): health checks of sites and servers.
-- Same meaning as migrations/postgres/0010_health.sql.
-- Never edit a landed migration: add a new one.

-- The last `health.check` job's verdict (`ok` or `failing`; NULL: never checked), what it
-- saw (`HTTP 200 in 3 ms`, `connection refused`, …) and when. Written by the job alone:
-- neither a site's revision nor its updated_at moves.
ALTER TABLE sites ADD COLUMN health TEXT;
ALTER TABLE sites ADD COLUMN health_detail TEXT;
ALTER TABLE sites ADD COLUMN health_at TEXT;
ALTER TABLE servers ADD COLUMN health TEXT;
ALTER TABLE servers ADD COLUMN health_detail TEXT;
ALTER TABLE servers ADD COLUMN health_at TEXT;
