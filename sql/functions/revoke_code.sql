-- Deactivates a code and ends all its active claims (end_reason = 'revoked'). Returns
-- the number of claims it ended, 0 for a code revoked with none (`revoked` is the same
-- number under the name of earlier versions).
CREATE OR REPLACE FUNCTION capacity.revoke_code(code text)
RETURNS TABLE (revoked integer, claims_ended integer)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    v_code    text := capacity._require_code(revoke_code.code);
    c         capacity.codes;
    v_pools   text[];
    v_holders text[];
    v_units   integer;  -- the units of the claims ended
BEGIN
    SELECT * INTO c FROM capacity.codes AS k WHERE k.code = v_code FOR NO KEY UPDATE;
    IF NOT FOUND THEN
        PERFORM capacity._raise_code_not_found(v_code);
    END IF;
    -- Slot rows next (lock order), so in-flight slotted claims commit before we look.
    PERFORM 1 FROM capacity.code_slots AS s WHERE s.code_id = c.code_id ORDER BY s.slot FOR NO KEY UPDATE;
    WITH ended AS (
        UPDATE capacity.claims AS cl
           SET released_at = now(), end_reason = 'revoked'
         WHERE cl.code_id = c.code_id AND cl.released_at IS NULL
        RETURNING cl.claim_id, cl.pool, cl.holder, cl.units
    ), logged AS (
        INSERT INTO capacity.events (kind, code_id, code, pool, holder, claim_id, usage_after, units)
        SELECT 'revoked', c.code_id, c.code, c.pool, e.holder, e.claim_id, 0, e.units FROM ended AS e
    )
    SELECT count(*)::integer, COALESCE(sum(units), 0)::integer,
           array_agg(pool ORDER BY pool, holder), array_agg(holder ORDER BY pool, holder)
      INTO revoked, v_units, v_pools, v_holders
      FROM ended;
    UPDATE capacity.codes AS k
       SET is_active = false, updated_at = now(),
           usage_count = CASE WHEN k.slots > 0 THEN 0 ELSE k.usage_count - v_units END
     WHERE k.code_id = c.code_id
    RETURNING * INTO c;
    IF c.slots > 0 THEN
        UPDATE capacity.code_slots AS s SET used = 0 WHERE s.code_id = c.code_id AND s.used <> 0;
        PERFORM capacity._resize_slots(c.code_id, c.slots);  -- all capacity back in the slots
    END IF;
    IF revoked > 0 THEN
        PERFORM capacity._release_holders(v_pools, v_holders);
    ELSE
        PERFORM capacity._log('revoked', c, NULL, NULL);
    END IF;
    claims_ended := revoked;
    RETURN NEXT;
END
$$;
