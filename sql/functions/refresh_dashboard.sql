-- Brings capacity.dashboard up to date when changes were published since the last refresh,
-- when it is older than max_age (its "last hour" columns age by themselves) or when forced.
-- One refresher at a time (transaction-scoped advisory lock); a concurrent call returns
-- reason 'busy'. It publishes pending changes first (so cron users need nothing else), and
-- records the publication count it read *before* refreshing: a batch published later
-- leaves the dashboard stale for the next call, so nothing is ever missed.
-- However many API instances ask, unforced refreshes never take more than a third of
-- the time: after one that took 100 ms or more (some 250 000 codes), the next waits
-- until three times its duration has passed since it started (reason 'throttled'; the
-- changes stay pending for the next call).
-- jit = off: the view's estimate grows with the codes, and once it passed the JIT
-- thresholds compiling the query took ten times running it (0.4 s against 40 ms per
-- refresh, twice a second while the API runs; docs/benchmarks.md).
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
    REFRESH MATERIALIZED VIEW CONCURRENTLY capacity.dashboard;
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
