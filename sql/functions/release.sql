-- Releases a claim by id. Idempotent: releasing an ended claim returns released = false.
-- With token, the claim's token must match (HTTP callers always pass it). A claim past its
-- lease ends as expired, never as released: released = false.
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
            USING ERRCODE = 'CP001', DETAIL = jsonb_build_object('field', 'claim_id')::text,
                  HINT = 'Pass the claim_id that claim() returned, or release by (code, holder).';
    END IF;
    SELECT * INTO cl FROM capacity.claims AS k WHERE k.claim_id = release.claim_id;
    IF NOT FOUND OR cl.token IS DISTINCT FROM COALESCE(release.token, cl.token) THEN
        RAISE EXCEPTION 'CLAIM_NOT_FOUND: no claim % with this token', release.claim_id
            USING ERRCODE = 'CP007', DETAIL = jsonb_build_object('claim_id', release.claim_id)::text,
                  HINT = 'Pass the claim_id and token that claim() returned; release by (code, holder) if the token is lost.';
    END IF;
    IF cl.released_at IS NOT NULL THEN
        SELECT * INTO c FROM capacity.codes AS k WHERE k.code_id = cl.code_id;
        c := capacity._with_total_usage(c);
        RETURN ROW(cl.claim_id, c.code, cl.holder, false, c.usage_count,
                   c.max_uses - c.usage_count)::capacity.release_result;
    END IF;
    RETURN capacity._release_claim(cl);
END
$$;

-- Releases the holder's active claim on a code. Without one (or with one past its lease,
-- which ends as expired), returns released = false (claim_id NULL without one), so
-- retries are safe.
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
    RETURN capacity._release_claim(cl);
END
$$;

-- Ends an active claim for release(): released, or expired with released = false when it
-- is past its lease (its units come back either way; nothing renews a lapsed claim).
CREATE OR REPLACE FUNCTION capacity._release_claim(cl capacity.claims)
RETURNS capacity.release_result
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    r capacity.release_result;
BEGIN
    IF cl.lease_expires_at IS NULL OR cl.lease_expires_at > pg_catalog.now() THEN
        RETURN capacity._end_claim(cl, 'released');
    END IF;
    r := capacity._end_claim(cl, 'expired');
    r.released := false;
    RETURN r;
END
$$;

-- Ends one claim. Takes its units back first, which locks what holds it (its slot row, or
-- the code row when the claim is counted there), then ends the claim, then gives its
-- units back to its pool if the pool is capped, then counts it off its holder. Returns
-- released = false when a concurrent call ended it first (and puts back the units it
-- took). A conditional update rather than locking the row and then
-- updating it: one statement and one WAL record less per release.
CREATE OR REPLACE FUNCTION capacity._end_claim(cl capacity.claims, p_reason capacity.end_reason)
RETURNS capacity.release_result
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    c       capacity.codes;
    ended   capacity.claims;
    v_slot  bigint;
    v_taken boolean := false;  -- the units were taken from the code row
    v_stripes integer;
BEGIN
    -- Before any row lock: set_pool_limit holds it exclusively while it counts the pool.
    PERFORM capacity._lock_pool(cl.pool, true);
    IF cl.slot_id IS NOT NULL THEN
        -- No row when the code was re-sliced or made plain: the claim is then counted in
        -- the code row. (Fewer used: nothing to take, the claim has ended.)
        UPDATE capacity.code_slots AS s SET used = s.used - cl.units
         WHERE s.slot_id = cl.slot_id AND s.used >= cl.units
        RETURNING s.slot_id INTO v_slot;
    END IF;
    IF v_slot IS NULL THEN
        UPDATE capacity.codes AS k SET usage_count = k.usage_count - cl.units
         WHERE k.code_id = cl.code_id AND k.usage_count >= cl.units
        RETURNING * INTO c;
        v_taken := FOUND;
        IF NOT v_taken THEN  -- nothing counted in the row: lock it to look at the claim
            SELECT * INTO STRICT c FROM capacity.codes WHERE code_id = cl.code_id FOR NO KEY UPDATE;
        END IF;
    END IF;
    UPDATE capacity.claims
       SET released_at = pg_catalog.now(), end_reason = p_reason
     WHERE claim_id = cl.claim_id AND released_at IS NULL
    RETURNING * INTO ended;
    IF NOT FOUND THEN
        -- A concurrent call ended it first: put back what was taken above.
        IF v_slot IS NOT NULL THEN
            UPDATE capacity.code_slots AS s SET used = s.used + cl.units WHERE s.slot_id = v_slot;
            SELECT * INTO STRICT c FROM capacity.codes WHERE code_id = cl.code_id;
        ELSIF v_taken THEN
            UPDATE capacity.codes AS k SET usage_count = k.usage_count + cl.units
             WHERE k.code_id = cl.code_id
            RETURNING * INTO c;
        END IF;
        c := capacity._with_total_usage(c);
        RETURN ROW(cl.claim_id, c.code, cl.holder, false, c.usage_count,
                   c.max_uses - c.usage_count)::capacity.release_result;
    END IF;
    -- (Active although nothing was counted in its row, v_taken false, only after a counter
    -- was changed by hand: the claim ends without going below 0; reconcile() reports it.)
    IF v_slot IS NOT NULL THEN
        SELECT * INTO STRICT c FROM capacity.codes WHERE code_id = cl.code_id;
    ELSIF v_taken AND c.slots > 0 THEN
        PERFORM capacity._return_base_units(c.code_id, cl.units);
    END IF;
    SELECT p.stripes INTO v_stripes FROM capacity.pool_limits AS p WHERE p.pool = ended.pool;
    IF FOUND THEN
        PERFORM capacity._return_pool_units(ended.pool, v_stripes, ended.units);
    END IF;
    -- Only a limited holder has a counter (the shared lock: see _finish_claim).
    PERFORM capacity._lock_holder_shared(ended.pool, ended.holder);
    UPDATE capacity.holders SET active_claims = active_claims - 1
     WHERE pool = ended.pool AND holder = ended.holder;
    c := capacity._with_total_usage(c);
    -- Plain statements, not _log(): this runs on every release.
    INSERT INTO capacity.events (kind, code_id, code, pool, holder, claim_id, usage_after, units)
    VALUES (p_reason::text::capacity.event_kind, c.code_id, c.code, c.pool, ended.holder,
            ended.claim_id, c.usage_count, ended.units);
    IF p_reason = 'expired' THEN  -- counted in the dashboard's expiries, like expire_idle_claims'
        INSERT INTO capacity.pending_changes (codes, pool, expiries) VALUES (ARRAY[c.code], c.pool, 1);
    ELSE
        INSERT INTO capacity.pending_changes (codes) VALUES (ARRAY[c.code]);
    END IF;
    RETURN ROW(cl.claim_id, c.code, cl.holder, true, c.usage_count,
               c.max_uses - c.usage_count)::capacity.release_result;
END
$$;
