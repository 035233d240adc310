-- activity() over the shards that hold the code or pool (all for every code): each
-- bucket's counts and units added up across shards.
CREATE OR REPLACE FUNCTION capacity.activity(
    span interval DEFAULT '1 hour', bucket interval DEFAULT '1 minute',
    code text DEFAULT NULL, pool text DEFAULT NULL)
RETURNS TABLE (bucket_start timestamptz, claimed integer, released integer,
               expired integer, revoked integer, units_in_use integer)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    e_state text; e_message text; e_detail text; e_hint text;
BEGIN
    RETURN QUERY
        SELECT a.bucket_start, sum(a.claimed)::integer, sum(a.released)::integer,
               sum(a.expired)::integer, sum(a.revoked)::integer, sum(a.units_in_use)::integer
          FROM capacity_cluster.activity(span, bucket, code, pool) AS a
         GROUP BY a.bucket_start ORDER BY a.bucket_start;
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS e_state = RETURNED_SQLSTATE, e_message = MESSAGE_TEXT,
                            e_detail = PG_EXCEPTION_DETAIL, e_hint = PG_EXCEPTION_HINT;
    PERFORM capacity_cluster.reraise(e_state, e_message, e_detail, e_hint);
    RETURN;
END
$$;
