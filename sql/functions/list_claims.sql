-- Active claims in claim_id order, a page at a time: those of one code, of one holder
-- (in every pool), of both, or all; after starts past the last claim_id of the previous
-- page. Tokens are never shown. A holder's claims are found by index; a code's are read
-- from the index of all active claims (the claim path keeps no index by code).
CREATE OR REPLACE FUNCTION capacity.list_claims(
    code text DEFAULT NULL, holder text DEFAULT NULL, after bigint DEFAULT NULL,
    page_size integer DEFAULT 100)
RETURNS SETOF capacity.claim_info
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_code_id bigint;
    v_holder  text;
    v_size    integer := capacity._require_page_size(list_claims.page_size);
BEGIN
    IF list_claims.code IS NOT NULL THEN
        SELECT k.code_id INTO v_code_id
          FROM capacity.codes AS k WHERE k.code = capacity._require_code(list_claims.code);
        IF NOT FOUND THEN
            PERFORM capacity._raise_code_not_found(capacity._normalise_code(list_claims.code));
        END IF;
    END IF;
    IF list_claims.holder IS NOT NULL THEN
        v_holder := capacity._require_holder(list_claims.holder);
    END IF;
    RETURN QUERY
        SELECT cl.claim_id, k.code, cl.pool, cl.holder, cl.claimed_at, cl.last_seen_at,
               cl.released_at, cl.end_reason, cl.units, cl.lease_expires_at
          FROM capacity.claims AS cl
          JOIN capacity.codes AS k ON k.code_id = cl.code_id
         WHERE cl.released_at IS NULL
           AND (v_code_id IS NULL OR cl.code_id = v_code_id)
           AND (v_holder IS NULL OR cl.holder = v_holder)
           AND cl.claim_id > COALESCE(list_claims.after, 0)
         ORDER BY cl.claim_id
         LIMIT v_size;
END
$$;
