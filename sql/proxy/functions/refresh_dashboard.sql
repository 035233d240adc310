-- refresh_dashboard() on every shard: refreshed if any shard refreshed; refreshed_at is
-- the oldest shard's (how stale the dashboard can be), the reasons side by side.
CREATE OR REPLACE FUNCTION capacity.refresh_dashboard(force boolean DEFAULT false,
                                                      max_age interval DEFAULT '1 minute')
RETURNS TABLE (refreshed boolean, refreshed_at timestamptz, reason text)
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    e_state text; e_message text; e_detail text; e_hint text;
BEGIN
    RETURN QUERY
        SELECT coalesce(bool_or(r.refreshed), false), min(r.refreshed_at),
               string_agg(DISTINCT r.reason, ',' ORDER BY r.reason)
          FROM capacity_cluster.refresh_dashboard(force, max_age) AS r;
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS e_state = RETURNED_SQLSTATE, e_message = MESSAGE_TEXT,
                            e_detail = PG_EXCEPTION_DETAIL, e_hint = PG_EXCEPTION_HINT;
    PERFORM capacity_cluster.reraise(e_state, e_message, e_detail, e_hint);
    RETURN;
END
$$;
