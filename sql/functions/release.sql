-- Releases a claim by id. Idempotent: releasing an ended claim returns released = false.
-- With token, the claim's token must match (HTTP callers always pass it).
CREATE OR REPLACE FUNCTION capacity.release(claim_id bigint, token uuid DEFAULT NULL)
RETURNS capacity.release_result
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    cl capacity.claims;
    c  capacity.codes;
BEGIN
    IF release.claim_id IS NULL THEN
        RAISE EXCEPTION 'VALIDATION_ERROR: claim_id is required'
            USING ERRCODE = 'CP001', DETAIL = jsonb_build_object('field', 'claim_id')::text;
    END IF;
    SELECT * INTO cl FROM capacity.claims AS k WHERE k.claim_id = release.claim_id;
    IF NOT FOUND OR cl.token IS DISTINCT FROM COALESCE(release.token, cl.token) THEN
        RAISE EXCEPTION 'CLAIM_NOT_FOUND: no claim % with this token', release.claim_id
            USING ERRCODE = 'CP007', DETAIL = jsonb_build_object('claim_id', release.claim_id)::text;
    END IF;
    IF cl.released_at IS NOT NULL THEN
        SELECT * INTO c FROM capacity.codes AS k WHERE k.code_id = cl.code_id;
        c := capacity._with_total_usage(c);
        RETURN ROW(cl.claim_id, c.code, cl.holder, false, c.usage_count,
                   c.max_uses - c.usage_count)::capacity.release_result;
    END IF;
    RETURN capacity._end_claim(cl, 'released');
END
$$;

-- Releases the holder's active claim on a code. Without one, returns released = false
-- (claim_id NULL), so retries are safe.
CREATE OR REPLACE FUNCTION capacity.release(code text, holder text)
RETURNS capacity.release_result
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    v_code   text := capacity._require_code(release.code);
    v_holder text := capacity._require_holder(release.holder);
    c        capacity.codes;
    cl       capacity.claims;
BEGIN
    SELECT * INTO c FROM capacity.codes AS k WHERE k.code = v_code;
    IF NOT FOUND THEN
        PERFORM capacity._raise_code_not_found(v_code);
    END IF;
    SELECT * INTO cl FROM capacity.claims AS k
     WHERE k.code_id = c.code_id AND k.holder = v_holder AND k.released_at IS NULL;
    IF NOT FOUND THEN
        c := capacity._with_total_usage(c);
        RETURN ROW(NULL, c.code, v_holder, false, c.usage_count,
                   c.max_uses - c.usage_count)::capacity.release_result;
    END IF;
    RETURN capacity._end_claim(cl, 'released');
END
$$;
