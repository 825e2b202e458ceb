-- vipanel schema v9 (SQLite dialect): jobs that must run on one node.
-- Same meaning as migrations/postgres/0009_job_node.sql.
-- Never edit a landed migration: add a new one.

-- The node (`jobs.node`, by default the machine's hostname) whose workers alone may claim the
-- job: set for work on that machine's own host (`site.apply`). NULL: any node's workers.
ALTER TABLE jobs ADD COLUMN node TEXT;

-- Jobs changed since a time (the `jobs` topic of session subscriptions).
CREATE INDEX jobs_updated ON jobs(updated_at);
