-- Change marks (PostgreSQL dialect; same meaning as migrations/sqlite/0007_change_marks.sql): a
-- note that objects of `kind` in `tenant` changed, for writes that have no audit row of their
-- own (the outcome of a host apply: a site's status and applied time). Caches in every process
-- read them after the audit rows to know what to drop (docs/cache.md). Only the newest rows
-- matter: writers prune the old ones as they go.
CREATE TABLE change_marks (
    seq     BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant  TEXT NOT NULL,
    kind    TEXT NOT NULL
);
