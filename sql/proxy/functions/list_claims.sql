-- list_claims() over the shards (the code's only, for one code): merged in claim_id
-- order and cut to one page (ids are unique across shards, so keyset paging works).
CREATE OR REPLACE FUNCTION capacity.list_claims(
    code text DEFAULT NULL, holder text DEFAULT NULL, after bigint DEFAULT NULL,
    page_size integer DEFAULT 100)
RETURNS SETOF capacity.claim_info
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    e_state text; e_message text; e_detail text; e_hint text;
BEGIN
    RETURN QUERY SELECT * FROM capacity_cluster.list_claims(code, holder, after, page_size) AS c
                  ORDER BY c.claim_id -- At least 1: a LIMIT 0 would never call the shards, which refuse the page size.
                  LIMIT greatest(page_size, 1);
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS e_state = RETURNED_SQLSTATE, e_message = MESSAGE_TEXT,
                            e_detail = PG_EXCEPTION_DETAIL, e_hint = PG_EXCEPTION_HINT;
    PERFORM capacity_cluster.reraise(e_state, e_message, e_detail, e_hint);
    RETURN;
END
$$;
