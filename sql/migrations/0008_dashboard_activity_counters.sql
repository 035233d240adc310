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
-- The per-code part now sums the slot rows once per refresh and joins them, instead of
-- a subquery per code evaluated three times: 370 against 890 ms of CPU with a million
-- codes, and an estimate that no longer calls for JIT compilation.

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

DROP MATERIALIZED VIEW capacity.dashboard;
CREATE MATERIALIZED VIEW capacity.dashboard AS
WITH slot_usage AS (
    SELECT s.code_id, sum(s.used) AS used FROM capacity.code_slots AS s GROUP BY s.code_id
), per_code AS (
    SELECT c.pool, c.is_active, c.expires_at, c.max_uses,
           c.usage_count + CASE WHEN c.slots > 0 THEN COALESCE(su.used, 0) ELSE 0 END AS usage
      FROM capacity.codes AS c
      LEFT JOIN slot_usage AS su ON su.code_id = c.code_id
), code_totals AS (
    SELECT u.pool,
           count(*)::integer AS codes,
           count(*) FILTER (WHERE u.is_active
                              AND (u.expires_at IS NULL OR u.expires_at > now()))::integer AS active_codes,
           count(*) FILTER (WHERE u.usage >= u.max_uses)::integer AS full_codes,
           count(*) FILTER (WHERE u.usage >= 0.9 * u.max_uses)::integer AS near_capacity_codes,
           sum(u.usage)::bigint AS units_used,
           sum(u.max_uses)::bigint AS units_total
      FROM per_code AS u
     GROUP BY u.pool
), claim_totals AS (
    SELECT cl.pool, count(*)::integer AS active_claims
      FROM capacity.claims AS cl
     WHERE cl.released_at IS NULL
     GROUP BY cl.pool
), recent AS (
    -- Whole minutes: the minute that began more than an hour ago is left out.
    SELECT a.pool,
           sum(a.claims)::integer AS claims_last_hour,
           sum(a.expiries)::integer AS expiries_last_hour
      FROM capacity.pool_activity AS a
     WHERE a.minute > now() - interval '1 hour'
     GROUP BY a.pool
)
SELECT pool,
       COALESCE(t.codes, 0) AS codes,
       COALESCE(t.active_codes, 0) AS active_codes,
       COALESCE(t.full_codes, 0) AS full_codes,
       COALESCE(t.near_capacity_codes, 0) AS near_capacity_codes,
       COALESCE(t.units_used, 0) AS units_used,
       COALESCE(t.units_total, 0) AS units_total,
       COALESCE(a.active_claims, 0) AS active_claims,
       COALESCE(r.claims_last_hour, 0) AS claims_last_hour,
       COALESCE(r.expiries_last_hour, 0) AS expiries_last_hour,
       now() AS refreshed_at
  FROM code_totals AS t
  FULL JOIN claim_totals AS a USING (pool)
  FULL JOIN recent AS r USING (pool);
CREATE UNIQUE INDEX dashboard_pool ON capacity.dashboard (pool);
COMMENT ON MATERIALIZED VIEW capacity.dashboard IS
    'Per-pool summary, refreshed by capacity.refresh_dashboard() (the API runs it every PGCAPACITY_DASHBOARD_REFRESH_MS).';
