-- tune_slots() on every shard: the codes any shard switched.
CREATE OR REPLACE FUNCTION capacity.tune_slots(min_claims integer DEFAULT 600, slots integer DEFAULT 32)
RETURNS TABLE (code text, slot_count integer)
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    e_state text; e_message text; e_detail text; e_hint text;
BEGIN
    RETURN QUERY SELECT * FROM capacity_cluster.tune_slots(min_claims, slots) AS t ORDER BY t.code;
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS e_state = RETURNED_SQLSTATE, e_message = MESSAGE_TEXT,
                            e_detail = PG_EXCEPTION_DETAIL, e_hint = PG_EXCEPTION_HINT;
    PERFORM capacity_cluster.reraise(e_state, e_message, e_detail, e_hint);
    RETURN;
END
$$;
