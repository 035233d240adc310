-- One claim by id, active or ended, without its token; CLAIM_NOT_FOUND if there is none
-- (ended claims are kept until prune_events() removes them).
CREATE OR REPLACE FUNCTION capacity.get_claim(claim_id bigint)
RETURNS capacity.claim_info
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_claim capacity.claim_info;
BEGIN
    SELECT cl.claim_id, k.code, cl.pool, cl.holder, cl.claimed_at, cl.last_seen_at,
           cl.released_at, cl.end_reason, cl.units, cl.lease_expires_at
      INTO v_claim
      FROM capacity.claims AS cl
      JOIN capacity.codes AS k ON k.code_id = cl.code_id
     WHERE cl.claim_id = get_claim.claim_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'CLAIM_NOT_FOUND: no claim %', COALESCE(get_claim.claim_id::text, 'null')
            USING ERRCODE = 'CP007',
                  DETAIL = pg_catalog.jsonb_build_object('claim_id', get_claim.claim_id)::text,
                  HINT = 'Use the claim_id that claim() returned; ended claims are pruned after a while (prune_events).';
    END IF;
    RETURN v_claim;
END
$$;
