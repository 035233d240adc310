-- prune_events() on every shard; the deletions added up.
CREATE OR REPLACE FUNCTION capacity.prune_events(older_than interval DEFAULT '90 days', batch_size integer DEFAULT 10000)
RETURNS TABLE (events_deleted integer, claims_deleted integer)
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    e_state text; e_message text; e_detail text; e_hint text;
BEGIN
    RETURN QUERY SELECT coalesce(sum(p.events_deleted), 0)::integer, coalesce(sum(p.claims_deleted), 0)::integer
                   FROM capacity_cluster.prune_events(older_than, batch_size) AS p;
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS e_state = RETURNED_SQLSTATE, e_message = MESSAGE_TEXT,
                            e_detail = PG_EXCEPTION_DETAIL, e_hint = PG_EXCEPTION_HINT;
    PERFORM capacity_cluster.reraise(e_state, e_message, e_detail, e_hint);
    RETURN;
END
$$;
