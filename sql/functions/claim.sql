-- Claims one unit of a code for a holder, inside the caller's transaction.
-- Idempotent per (code, holder): a holder that already holds the code gets its claim back
-- (already_held = true) and uses no extra unit. Never exceeds max_uses or the holder limit.
CREATE OR REPLACE FUNCTION capacity.claim(code text, holder text, lock_mode text DEFAULT 'advisory')
RETURNS capacity.claim_result
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    v_code   text := capacity._require_code(claim.code);
    v_holder text := capacity._require_holder(claim.holder);
    v_mode   text := capacity._require_lock_mode(claim.lock_mode);
    c        capacity.codes;
    cl       capacity.claims;
    h        capacity.holders;
    result   capacity.claim_result;
BEGIN
    -- 1. Unlocked look-ups answer the cheap cases without touching a lock.
    SELECT * INTO c FROM capacity.codes AS k WHERE k.code = v_code;
    IF NOT FOUND THEN
        PERFORM capacity._raise_code_not_found(v_code);
    END IF;
    SELECT * INTO cl FROM capacity.claims AS k
     WHERE k.code_id = c.code_id AND k.holder = v_holder AND k.released_at IS NULL;
    IF FOUND THEN
        c := capacity._with_total_usage(c);
        RETURN ROW(cl.claim_id, cl.token, c.code, cl.holder, c.usage_count, c.max_uses,
                   c.max_uses - c.usage_count, true, cl.claimed_at)::capacity.claim_result;
    END IF;
    -- (A slotted code's row counts only units outside its slots: this catches
    -- inactive, expired and codes whose capacity is all outside the slots.)
    PERFORM capacity._raise_if_blocked(c);
    SELECT * INTO h FROM capacity.holders AS k WHERE k.pool = c.pool AND k.holder = v_holder;
    IF h.max_claims IS NOT NULL AND h.active_claims >= h.max_claims THEN
        PERFORM capacity._raise_holder_limit(c.pool, v_holder, h.max_claims);
    END IF;

    -- 2a. A slotted code: take a unit from one of its slot rows, never the code row.
    IF c.slots > 0 THEN
        result := capacity._claim_from_slot(c, v_holder, v_mode);
        IF result IS NOT NULL THEN
            RETURN result;
        END IF;  -- it turned plain meanwhile
    END IF;

    -- 2b. Lock the code row (lock order: code, claim, holder), then decide on fresh data.
    c := capacity._lock_code(c.code_id, v_mode);
    IF c.slots > 0 THEN  -- it became slotted while we waited for the row
        RETURN capacity._claim_from_slot(c, v_holder, v_mode);
    END IF;
    SELECT * INTO cl FROM capacity.claims AS k
     WHERE k.code_id = c.code_id AND k.holder = v_holder AND k.released_at IS NULL;
    IF FOUND THEN
        RETURN ROW(cl.claim_id, cl.token, c.code, cl.holder, c.usage_count, c.max_uses,
                   c.max_uses - c.usage_count, true, cl.claimed_at)::capacity.claim_result;
    END IF;
    PERFORM capacity._raise_if_blocked(c);

    INSERT INTO capacity.claims (code_id, pool, holder)
    VALUES (c.code_id, c.pool, v_holder)
    RETURNING * INTO cl;

    UPDATE capacity.codes AS k SET usage_count = k.usage_count + 1
     WHERE k.code_id = c.code_id
    RETURNING * INTO c;

    PERFORM capacity._count_holder_claim(c.pool, v_holder);

    PERFORM capacity._log('claimed', c, v_holder, cl.claim_id);
    RETURN ROW(cl.claim_id, cl.token, c.code, cl.holder, c.usage_count, c.max_uses,
               c.max_uses - c.usage_count, false, cl.claimed_at)::capacity.claim_result;
END
$$;
