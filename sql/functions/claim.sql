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
    v_id     bigint;
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
        RETURN capacity._claim_result(c, cl, true);
    END IF;
    -- (A slotted code's row counts only units outside its slots: this catches
    -- inactive, expired and codes whose capacity is all outside the slots.)
    IF capacity._blocker(c) IS NOT NULL THEN
        PERFORM capacity._raise_if_blocked(c);
    END IF;
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

    -- 2b. A plain code: take the unit with one conditional update of the code row (lock
    --     order: code, claim, holder). A waiting UPDATE re-checks its condition on the
    --     newest row version, so it is the capacity check itself.
    IF v_mode = 'advisory' THEN
        PERFORM pg_catalog.pg_advisory_xact_lock(capacity._lock_namespace(), (c.code_id % 2147483647)::integer);
    ELSIF v_mode = 'nowait' THEN
        c := capacity._lock_code(c.code_id, v_mode);
    END IF;
    v_id := c.code_id;
    UPDATE capacity.codes AS k SET usage_count = k.usage_count + 1
     WHERE k.code_id = v_id AND k.slots = 0 AND k.usage_count < k.max_uses AND k.is_active
       AND (k.expires_at IS NULL OR k.expires_at > pg_catalog.now())
    RETURNING * INTO c;
    IF NOT FOUND THEN
        -- Full, blocked or slotted now (c is all NULL): decide on the locked row.
        c := capacity._lock_code(v_id, v_mode);
        IF c.slots > 0 THEN
            RETURN capacity._claim_from_slot(c, v_holder, v_mode);
        END IF;
        SELECT * INTO cl FROM capacity.claims AS k
         WHERE k.code_id = c.code_id AND k.holder = v_holder AND k.released_at IS NULL;
        IF FOUND THEN
            RETURN capacity._claim_result(c, cl, true);
        END IF;
        PERFORM capacity._raise_if_blocked(c);
        UPDATE capacity.codes AS k SET usage_count = k.usage_count + 1
         WHERE k.code_id = c.code_id
        RETURNING * INTO c;  -- a unit was freed since the conditional update
    END IF;

    LOOP
        INSERT INTO capacity.claims AS k (code_id, pool, holder)
        VALUES (c.code_id, c.pool, v_holder)
        ON CONFLICT (code_id, holder) WHERE released_at IS NULL DO NOTHING
        RETURNING * INTO cl;
        EXIT WHEN FOUND;
        -- The same holder's concurrent claim committed first: that is the claim, and the
        -- unit goes back. If it ended meanwhile (a claim from a slot, released from its
        -- slot while the code was being made plain), the insert is tried again.
        SELECT * INTO cl FROM capacity.claims AS k
         WHERE k.code_id = c.code_id AND k.holder = v_holder AND k.released_at IS NULL;
        IF FOUND THEN
            UPDATE capacity.codes AS k SET usage_count = k.usage_count - 1
             WHERE k.code_id = c.code_id
            RETURNING * INTO c;
            RETURN capacity._claim_result(c, cl, true);
        END IF;
    END LOOP;
    RETURN capacity._finish_claim(c, cl);
END
$$;
