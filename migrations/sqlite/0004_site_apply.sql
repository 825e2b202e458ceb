-- Sites applied to the host (nginx, PHP-FPM, a system user per site).
-- `revision` counts changes to what a site should be; `applied_revision` is the revision the host
-- last matched (0 = never applied), so `host reconcile` knows what a crash left behind.
-- `status`: pending (recorded, not applied yet), active, disabled, error (`last_error` says why),
-- deleting (being removed from the host; the row goes once the host no longer has it).
ALTER TABLE sites ADD COLUMN enabled INTEGER NOT NULL DEFAULT 1;
ALTER TABLE sites ADD COLUMN system_user TEXT;
ALTER TABLE sites ADD COLUMN revision INTEGER NOT NULL DEFAULT 1;
ALTER TABLE sites ADD COLUMN applied_revision INTEGER NOT NULL DEFAULT 0;
ALTER TABLE sites ADD COLUMN applied_at TEXT;
ALTER TABLE sites ADD COLUMN last_error TEXT;
-- Set with status `deleting` by `site delete --purge`: the host removes the files too.
ALTER TABLE sites ADD COLUMN purge_on_delete INTEGER NOT NULL DEFAULT 0;
CREATE INDEX sites_status ON sites(status);
