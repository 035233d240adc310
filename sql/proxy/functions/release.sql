-- release() by claim id on the shard the id names, or by code and holder on the code's shard.
CREATE OR REPLACE FUNCTION capacity.release(claim_id bigint, token uuid DEFAULT NULL)
RETURNS capacity.release_result
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    e_state text; e_message text; e_detail text; e_hint text;
BEGIN
    RETURN capacity_cluster.release(claim_id, token);
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS e_state = RETURNED_SQLSTATE, e_message = MESSAGE_TEXT,
                            e_detail = PG_EXCEPTION_DETAIL, e_hint = PG_EXCEPTION_HINT;
    PERFORM capacity_cluster.reraise(e_state, e_message, e_detail, e_hint);
    RETURN NULL;
END
$$;

-- The holder's active claim on the code released (without id and token).
CREATE OR REPLACE FUNCTION capacity.release(code text, holder text)
RETURNS capacity.release_result
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    e_state text; e_message text; e_detail text; e_hint text;
BEGIN
    RETURN capacity_cluster.release_holder(code, holder);
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS e_state = RETURNED_SQLSTATE, e_message = MESSAGE_TEXT,
                            e_detail = PG_EXCEPTION_DETAIL, e_hint = PG_EXCEPTION_HINT;
    PERFORM capacity_cluster.reraise(e_state, e_message, e_detail, e_hint);
    RETURN NULL;
END
$$;
