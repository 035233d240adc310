-- A holder's claim limit in a pool, on the pool's shard (placing the pool there first).
CREATE OR REPLACE FUNCTION capacity.set_holder_limit(pool text, holder text, max_claims integer)
RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    e_state text; e_message text; e_detail text; e_hint text;
BEGIN
    PERFORM capacity_cluster.set_holder_limit_on(
        capacity_cluster.place_pool(capacity._require_pool(pool)), pool, holder, max_claims);
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS e_state = RETURNED_SQLSTATE, e_message = MESSAGE_TEXT,
                            e_detail = PG_EXCEPTION_DETAIL, e_hint = PG_EXCEPTION_HINT;
    PERFORM capacity_cluster.reraise(e_state, e_message, e_detail, e_hint);
END
$$;
