-- Status of many codes: one call per shard holding some of them (PL/Proxy SPLIT), one row
-- per input code in input order, as on one server. A null or invalid element is refused
-- by a shard with the usual error before anything is read.
CREATE OR REPLACE FUNCTION capacity.usage_batch(codes text[])
RETURNS SETOF capacity.code_status
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    e_state text; e_message text; e_detail text; e_hint text;
    v_codes text[] := ARRAY(SELECT capacity._normalise_code(u.raw)
                              FROM unnest($1) WITH ORDINALITY AS u(raw, ord) ORDER BY u.ord);
BEGIN
    IF $1 IS NULL OR EXISTS (SELECT FROM unnest(v_codes) AS c WHERE c IS NULL OR NOT capacity._is_code(c)) THEN
        RETURN QUERY SELECT * FROM capacity_cluster.usage_batch_on(0, $1);  -- raises its error
        RETURN;
    END IF;
    RETURN QUERY
        WITH found AS (
            SELECT * FROM capacity_cluster.usage_batch(ARRAY(SELECT DISTINCT c FROM unnest(v_codes) AS c)))
        SELECT f.* FROM unnest(v_codes) WITH ORDINALITY AS u(code, ord)
          JOIN found AS f ON f.code = u.code
         ORDER BY u.ord;
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS e_state = RETURNED_SQLSTATE, e_message = MESSAGE_TEXT,
                            e_detail = PG_EXCEPTION_DETAIL, e_hint = PG_EXCEPTION_HINT;
    PERFORM capacity_cluster.reraise(e_state, e_message, e_detail, e_hint);
END
$$;
