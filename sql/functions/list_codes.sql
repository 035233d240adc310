-- Codes in code order, a page at a time, as check() reports each: search keeps the codes
-- that contain it (case-insensitive), pool the codes of one pool, after starts past the
-- last code of the previous page. No locks; reads the codes in index order until the
-- page is full, so a rare search reads many codes.
CREATE OR REPLACE FUNCTION capacity.list_codes(
    search text DEFAULT NULL, pool text DEFAULT NULL, after text DEFAULT NULL,
    page_size integer DEFAULT 100)
RETURNS SETOF capacity.code_status
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_search text := NULLIF(upper(btrim(list_codes.search)), '');
    v_pool   text;
    v_after  text;
    v_size   integer := capacity._require_page_size(list_codes.page_size);
BEGIN
    IF list_codes.pool IS NOT NULL THEN
        v_pool := capacity._require_pool(list_codes.pool);
    END IF;
    IF list_codes.after IS NOT NULL THEN
        v_after := capacity._require_code(list_codes.after, 'after');
    END IF;
    RETURN QUERY
        SELECT k.code, true, k.pool, k.is_active, k.expires_at, t.usage_count, k.max_uses,
               k.max_uses - t.usage_count,
               capacity._blocker_of(k.is_active, k.expires_at, t.usage_count, k.max_uses,
                                    k.total_claims, k.max_total_claims) IS NULL,
               capacity._blocker_of(k.is_active, k.expires_at, t.usage_count, k.max_uses,
                                    k.total_claims, k.max_total_claims),
               k.max_total_claims, k.total_claims, k.max_total_claims - k.total_claims
          FROM capacity.codes AS k
          -- OFFSET 0: computed once per code, not once per use (a slotted code's sum).
          CROSS JOIN LATERAL (SELECT capacity._total_usage(k) AS usage_count OFFSET 0) AS t
         WHERE (v_after IS NULL OR k.code > v_after)
           AND (v_pool IS NULL OR k.pool = v_pool)
           AND (v_search IS NULL OR pg_catalog.strpos(k.code, v_search) > 0)
         ORDER BY k.code
         LIMIT v_size;
END
$$;
