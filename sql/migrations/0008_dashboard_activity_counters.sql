-- 0008: the dashboard's "last hour" columns come from per-minute counters, not from
-- counting the hour's events at every refresh.
--
-- The dashboard is refreshed twice a second while the API runs, and its claims_last_hour
-- and expiries_last_hour counted every event of the last hour: two events per claim and
-- release, 3.6 million rows an hour at 500 claims/s, a third of a second per refresh,
-- growing with the load until the refresher alone took a core and the dashboard fell
-- behind its one-second staleness bound (docs/benchmarks.md). Now a claim's change mark
-- (the row it already adds to pending_changes) carries its pool and a count, and the
-- publisher, which consumes the marks anyway, adds them into one counter row per pool
-- and minute. Claims still write no shared row; the publisher writes a few rows per call.
-- The view, now kept in sql/views/dashboard.sql, reads those counters, and its per-code
-- part sums the slot rows once per refresh and joins them instead of a subquery per code
-- evaluated three times: 370 against 890 ms of CPU with a million codes, and an estimate
-- that no longer calls for JIT compilation.

-- Claims and expiries per pool and minute (UTC), kept for an hour; written only by
-- capacity.publish_changes(), pruned by capacity.refresh_dashboard().
CREATE TABLE capacity.pool_activity (
    pool     text        NOT NULL,
    minute   timestamptz NOT NULL,
    claims   bigint      NOT NULL DEFAULT 0,
    expiries bigint      NOT NULL DEFAULT 0,
    PRIMARY KEY (pool, minute)
);
COMMENT ON TABLE capacity.pool_activity IS
    'Claims and expiries per pool and minute, from the published change marks (last hour).';

-- A mark may now count claims or expiries of one pool. (pending_changes is unlogged: a
-- crash loses the marks not yet published, at most one publishing interval of counts.)
ALTER TABLE capacity.pending_changes
    ADD COLUMN pool     text,
    ADD COLUMN claims   integer NOT NULL DEFAULT 0,
    ADD COLUMN expiries integer NOT NULL DEFAULT 0,
    ADD CONSTRAINT pending_changes_counts_have_a_pool
        CHECK (pool IS NOT NULL OR (claims = 0 AND expiries = 0));

-- The hour before the upgrade, from the events (once).
INSERT INTO capacity.pool_activity (pool, minute, claims, expiries)
SELECT e.pool, date_trunc('minute', e.occurred_at, 'UTC'),
       count(*) FILTER (WHERE e.kind = 'claimed'), count(*) FILTER (WHERE e.kind = 'expired')
  FROM capacity.events AS e
 WHERE e.occurred_at > now() - interval '1 hour' AND e.kind IN ('claimed', 'expired')
 GROUP BY 1, 2;

-- The view itself now lives in sql/views/dashboard.sql (re-applied when it changes).
