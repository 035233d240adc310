-- 0003: writes stop sending NOTIFY themselves; capacity.publish_changes() sends one per batch.
--
-- Why: PostgreSQL serializes the commits of all notifying transactions (a cluster-wide
-- lock is held from pre-commit through the WAL flush), so a NOTIFY in every claim queued
-- every claim of every code behind one lock: `pgcapacity bench` measured spread claims at
-- 8 clients going from 696 to 1 307 per second without it (docs/benchmarks.md).
--
-- The codes trigger now only appends a mark (the codes its statement changed) to an
-- insert-only UNLOGGED table: no row lock, no WAL. A mark becomes visible exactly when its
-- write commits, so the notification published for it can never reach a listener before
-- the change it announces. The API publishes every PGCAPACITY_CHANGE_FEED_MS; cron users'
-- capacity.refresh_dashboard() publishes too.

ALTER TABLE capacity.dashboard_stale RENAME TO pending_changes;
ALTER TABLE capacity.pending_changes ADD COLUMN codes text[] NOT NULL DEFAULT '{}';
COMMENT ON TABLE capacity.pending_changes IS
    'One row per writing statement on capacity.codes not yet published (insert-only); codes {*} = all.';

-- How many batches of changes were published: the dashboard is stale while
-- dashboard_refreshes.refreshed_through is behind it.
CREATE TABLE capacity.change_feed (
    singleton    boolean     PRIMARY KEY DEFAULT true CHECK (singleton),
    published    bigint      NOT NULL DEFAULT 0,
    published_at timestamptz
);
INSERT INTO capacity.change_feed DEFAULT VALUES;
ALTER TABLE capacity.dashboard_refreshes ADD COLUMN refreshed_through bigint NOT NULL DEFAULT 0;

-- Trigger: appends one mark with the codes a statement changed ({*} for TRUNCATE).
CREATE OR REPLACE FUNCTION capacity._codes_changed()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        INSERT INTO capacity.pending_changes (codes) VALUES ('{*}');
    ELSE
        INSERT INTO capacity.pending_changes (codes)
        SELECT array_agg(DISTINCT ch.code) FROM changed AS ch HAVING count(*) > 0;
    END IF;
    RETURN NULL;
END
$$;
