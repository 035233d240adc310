-- 0009: the dashboard is a table the refresher rewrites, not a materialized view.
--
-- Why (docs/benchmarks-history.md, "The dashboard without a materialized view"): while the
-- API runs it refreshes the dashboard twice a second. REFRESH MATERIALIZED VIEW
-- CONCURRENTLY computes the view into a transient table, then diffs it against the old
-- contents through another one (two relations created and dropped in the catalog per
-- refresh) to change only the rows that differ: for one row per pool, that machinery
-- cost more than the aggregate itself with 11 000 codes (19 against 8 ms on an idle
-- server, 20 against 11 ms of CPU while claims run). Now the refresh deletes the rows and
-- inserts the new aggregate in its own transaction: readers still never wait, and see
-- the old rows or the new ones, never a mix.
--
-- capacity.dashboard becomes a plain view of this table (sql/views/dashboard.sql), with
-- the materialized view's columns, so readers and grants see no change.

CREATE TABLE capacity.dashboard_pools (
    pool                text        PRIMARY KEY,
    codes               integer     NOT NULL,
    active_codes        integer     NOT NULL,
    full_codes          integer     NOT NULL,
    near_capacity_codes integer     NOT NULL,
    units_used          bigint      NOT NULL,
    units_total         bigint      NOT NULL,
    active_claims       integer     NOT NULL,
    claims_last_hour    integer     NOT NULL,
    expiries_last_hour  integer     NOT NULL,
    refreshed_at        timestamptz NOT NULL
);
COMMENT ON TABLE capacity.dashboard_pools IS
    'Per-pool summary as of the last refresh_dashboard() (shown by the view capacity.dashboard).';

-- Carried over from the materialized view (sql/views/dashboard.sql then replaces it), so
-- the dashboard is not empty between the upgrade and the first refresh.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_class
                WHERE oid = to_regclass('capacity.dashboard') AND relkind = 'm') THEN
        INSERT INTO capacity.dashboard_pools
        SELECT d.pool, d.codes, d.active_codes, d.full_codes, d.near_capacity_codes, d.units_used,
               d.units_total, d.active_claims, d.claims_last_hour, d.expiries_last_hour, d.refreshed_at
          FROM capacity.dashboard AS d;
    END IF;
END
$$;
