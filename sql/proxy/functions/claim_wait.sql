-- claim_wait() on the code's shard (the wait holds one proxy connection to it).
CREATE OR REPLACE FUNCTION capacity.claim_wait(
    code text, holder text, wait interval, lock_mode text DEFAULT 'advisory',
    units integer DEFAULT 1, lease interval DEFAULT NULL)
RETURNS capacity.claim_result
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    e_state text; e_message text; e_detail text; e_hint text;
BEGIN
    RETURN capacity_cluster.claim_wait(code, holder, wait, lock_mode, units, lease);
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS e_state = RETURNED_SQLSTATE, e_message = MESSAGE_TEXT,
                            e_detail = PG_EXCEPTION_DETAIL, e_hint = PG_EXCEPTION_HINT;
    PERFORM capacity_cluster.reraise(e_state, e_message, e_detail, e_hint);
    RETURN NULL;
END
$$;
