-- list_codes() over the shards (the pool's only, for a placed pool): each shard's first
-- page, merged in code order and cut to one page, so keyset paging works as on one server.
CREATE OR REPLACE FUNCTION capacity.list_codes(
    search text DEFAULT NULL, pool text DEFAULT NULL, after text DEFAULT NULL,
    page_size integer DEFAULT 100)
RETURNS SETOF capacity.code_status
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    e_state text; e_message text; e_detail text; e_hint text;
BEGIN
    RETURN QUERY SELECT * FROM capacity_cluster.list_codes(search, pool, after, page_size) AS c
                  ORDER BY c.code -- At least 1: a LIMIT 0 would never call the shards, which refuse the page size.
                  LIMIT greatest(page_size, 1);
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS e_state = RETURNED_SQLSTATE, e_message = MESSAGE_TEXT,
                            e_detail = PG_EXCEPTION_DETAIL, e_hint = PG_EXCEPTION_HINT;
    PERFORM capacity_cluster.reraise(e_state, e_message, e_detail, e_hint);
    RETURN;
END
$$;
