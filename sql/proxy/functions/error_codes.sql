-- The error catalog (the first shard's: every shard has the same).
CREATE OR REPLACE FUNCTION capacity.error_codes()
RETURNS TABLE (name text, sqlstate text, http_status integer, description text, aliases text[], hint text)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    e_state text; e_message text; e_detail text; e_hint text;
BEGIN
    RETURN QUERY SELECT * FROM capacity_cluster.error_codes();
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS e_state = RETURNED_SQLSTATE, e_message = MESSAGE_TEXT,
                            e_detail = PG_EXCEPTION_DETAIL, e_hint = PG_EXCEPTION_HINT;
    PERFORM capacity_cluster.reraise(e_state, e_message, e_detail, e_hint);
    RETURN;
END
$$;
