-- Brings capacity.dashboard up to date when changes were published since the last refresh,
-- when it is older than max_age (its "last hour" columns age by themselves) or when forced.
-- One refresher at a time (transaction-scoped advisory lock); a concurrent call returns
-- reason 'busy'. It publishes pending changes first (so cron users need nothing else), and
-- records the publication count it read *before* refreshing: a batch published later
-- leaves the dashboard stale for the next call, so nothing is ever missed.
-- However many API instances ask, unforced refreshes never take more than a third of
-- the time: after one that took 100 ms or more (some 200 000 codes here), the next waits
-- until three times its duration has passed since it started (reason 'throttled'; the
-- changes stay pending for the next call).
-- jit = off: the aggregate's estimate grows with the codes, and once it passed the JIT
-- thresholds compiling the query took ten times running it (0.4 s against 40 ms per
-- refresh, twice a second while the API runs; docs/benchmarks-history.md).
CREATE OR REPLACE FUNCTION capacity.refresh_dashboard(force boolean DEFAULT false,
                                                      max_age interval DEFAULT '1 minute')
RETURNS TABLE (refreshed boolean, refreshed_at timestamptz, reason text)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET jit = off
AS $$
#variable_conflict use_column
DECLARE
    v_last      timestamptz;
    v_took_ms   numeric;
    v_through   bigint;
    v_published bigint;
    v_reason    text;
    v_started   timestamptz := clock_timestamp();
BEGIN
    IF NOT pg_try_advisory_xact_lock(capacity._lock_namespace(), -3) THEN
        SELECT r.refreshed_at INTO v_last FROM capacity.dashboard_refreshes AS r;
        RETURN QUERY SELECT false, v_last, 'busy'::text;
        RETURN;
    END IF;
    PERFORM capacity.publish_changes();
    SELECT f.published INTO v_published FROM capacity.change_feed AS f;
    SELECT r.refreshed_at, r.refreshed_through, r.duration_ms INTO v_last, v_through, v_took_ms
      FROM capacity.dashboard_refreshes AS r;
    v_reason := CASE WHEN force THEN 'forced'
                     WHEN v_published > v_through THEN 'changes'
                     WHEN v_last IS NULL OR v_last < clock_timestamp() - max_age THEN 'max_age'
                END;
    IF v_reason IS NULL THEN
        RETURN QUERY SELECT false, v_last, 'fresh'::text;
        RETURN;
    END IF;
    IF NOT force AND v_took_ms >= 100
       AND v_last + 3 * v_took_ms * interval '1 millisecond' > clock_timestamp() THEN
        RETURN QUERY SELECT false, v_last, 'throttled'::text;
        RETURN;
    END IF;
    DELETE FROM capacity.pool_activity AS a WHERE a.minute < now() - interval '1 hour';
    -- The new rows replace the old in this transaction: readers see one set or the other.
    -- (Not a materialized view: REFRESH ... CONCURRENTLY's transient tables and diff cost
    -- twice the aggregate, migration 0009.) Per code, the slot rows are summed once and
    -- joined, not a subquery per code.
    DELETE FROM capacity.dashboard_pools;
    INSERT INTO capacity.dashboard_pools
          (pool, codes, active_codes, full_codes, near_capacity_codes, units_used, units_total,
           active_claims, claims_last_hour, expiries_last_hour, refreshed_at)
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
               -- usage >= 90 % of max_uses in integers: numeric arithmetic on every code row
               -- took 30 % of the refresh (bigint: 9 * max_uses passes the integer range)
               count(*) FILTER (WHERE 10 * u.usage::bigint >= 9 * u.max_uses::bigint)::integer AS near_capacity_codes,
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
    INSERT INTO capacity.dashboard_refreshes AS r (refreshed_at, duration_ms, refreshed_through)
    VALUES (v_started, extract(epoch FROM clock_timestamp() - v_started) * 1000, v_published)
    ON CONFLICT (singleton) DO UPDATE
       SET refreshed_at = EXCLUDED.refreshed_at, duration_ms = EXCLUDED.duration_ms,
           refreshed_through = EXCLUDED.refreshed_through;
    -- API instances drop their cached copy of the dashboard.
    PERFORM pg_notify('pgcapacity_changes', '#dashboard');
    RETURN QUERY SELECT true, v_started, v_reason;
END
$$;
