-- publish_changes() on every shard: each notifies its own listeners (the API listens on
-- every shard); published if any shard had changes, codes added up.
CREATE OR REPLACE FUNCTION capacity.publish_changes()
RETURNS TABLE (published boolean, codes integer, reason text)
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    e_state text; e_message text; e_detail text; e_hint text;
BEGIN
    RETURN QUERY
        SELECT coalesce(bool_or(p.published), false), coalesce(sum(p.codes), 0)::integer,
               string_agg(DISTINCT p.reason, ',' ORDER BY p.reason)
          FROM capacity_cluster.publish_changes() AS p;
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS e_state = RETURNED_SQLSTATE, e_message = MESSAGE_TEXT,
                            e_detail = PG_EXCEPTION_DETAIL, e_hint = PG_EXCEPTION_HINT;
    PERFORM capacity_cluster.reraise(e_state, e_message, e_detail, e_hint);
    RETURN;
END
$$;
