-- Leaner claim and release structures, created only in bench/claim_structure.py's scratch
-- database to measure what a different PL/pgSQL structure would save. Never installed.
-- They cover the common path of a plain code (an open code, a new claim, a holder with
-- room) and hand every other case to capacity.claim() / capacity.release().
--
-- claim_lean:  capacity.claim() without the unlocked look-ups of the holder's active claim
--              and of the holder's limit (both found under the lock instead), with the
--              validation inlined and _finish_claim()'s statements in line.
-- release_lean: capacity.release(claim_id) with _end_claim()'s plain-code statements in
--              line (no helper calls).
-- claim_lean2: claim_lean without the look-up of the code row either: the advisory lock is
--              keyed on the code's text and the conditional update finds the row by code.
--              The fewest statements a claim can run and still check everything.

-- Claims one unit of an open plain code (the common path only; see above).
CREATE OR REPLACE FUNCTION capacity.claim_lean(code text, holder text, lock_mode text DEFAULT 'advisory')
RETURNS capacity.claim_result
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    v_code  text := pg_catalog.upper(pg_catalog.btrim(claim_lean.code, E' \t\r\n'));
    c       capacity.codes;
    cl      capacity.claims;
    v_limit integer;
BEGIN
    IF NOT COALESCE(pg_catalog.char_length(v_code) BETWEEN 1 AND 64
                AND pg_catalog.ltrim(v_code, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-') = ''
                AND pg_catalog.char_length(claim_lean.holder) BETWEEN 1 AND 256
                AND claim_lean.holder !~ '[[:cntrl:]]' AND claim_lean.holder ~ '[^[:space:]]'
                AND claim_lean.lock_mode IN ('wait', 'advisory'), false) THEN
        RETURN capacity.claim(claim_lean.code, claim_lean.holder, claim_lean.lock_mode);
    END IF;
    SELECT * INTO c FROM capacity.codes AS k WHERE k.code = v_code;
    IF NOT FOUND OR c.slots > 0 OR capacity._blocker(c) IS NOT NULL THEN
        RETURN capacity.claim(claim_lean.code, claim_lean.holder, claim_lean.lock_mode);
    END IF;
    IF claim_lean.lock_mode = 'advisory' THEN
        PERFORM pg_catalog.pg_advisory_xact_lock(capacity._lock_namespace(), (c.code_id % 2147483647)::integer);
    END IF;
    UPDATE capacity.codes AS k SET usage_count = k.usage_count + 1
     WHERE k.code_id = c.code_id AND k.slots = 0 AND k.usage_count < k.max_uses AND k.is_active
       AND (k.expires_at IS NULL OR k.expires_at > pg_catalog.now())
    RETURNING * INTO c;
    IF NOT FOUND THEN
        RETURN capacity.claim(claim_lean.code, claim_lean.holder, claim_lean.lock_mode);
    END IF;
    INSERT INTO capacity.claims AS k (code_id, pool, holder)
    VALUES (c.code_id, c.pool, claim_lean.holder)
    ON CONFLICT (code_id, holder) WHERE released_at IS NULL DO NOTHING
    RETURNING * INTO cl;
    IF NOT FOUND THEN
        UPDATE capacity.codes AS k SET usage_count = k.usage_count - 1 WHERE k.code_id = c.code_id;
        RETURN capacity.claim(claim_lean.code, claim_lean.holder, claim_lean.lock_mode);
    END IF;
    PERFORM capacity._lock_holder_shared(cl.pool, cl.holder);
    SELECT k.max_claims INTO v_limit FROM capacity.holders AS k
     WHERE k.pool = cl.pool AND k.holder = cl.holder;
    IF FOUND THEN
        UPDATE capacity.holders AS k SET active_claims = k.active_claims + 1
         WHERE k.pool = cl.pool AND k.holder = cl.holder AND k.active_claims < k.max_claims;
        IF NOT FOUND THEN
            PERFORM capacity._raise_holder_limit(cl.pool, cl.holder, v_limit);
        END IF;
    END IF;
    INSERT INTO capacity.events (kind, code_id, code, pool, holder, claim_id, usage_after)
    VALUES ('claimed', c.code_id, c.code, c.pool, cl.holder, cl.claim_id, c.usage_count);
    INSERT INTO capacity.pending_changes (codes, pool, claims) VALUES (ARRAY[c.code], c.pool, 1);
    RETURN ROW(cl.claim_id, cl.token, c.code, cl.holder, c.usage_count, c.max_uses,
               c.max_uses - c.usage_count, false, cl.claimed_at)::capacity.claim_result;
END
$$;

-- Releases a claim of a plain code by id (the common path only; see above).
CREATE OR REPLACE FUNCTION capacity.release_lean(claim_id bigint, token uuid DEFAULT NULL)
RETURNS capacity.release_result
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    cl    capacity.claims;
    ended capacity.claims;
    c     capacity.codes;
BEGIN
    SELECT * INTO cl FROM capacity.claims AS k WHERE k.claim_id = release_lean.claim_id;
    IF NOT FOUND OR cl.slot_id IS NOT NULL OR cl.released_at IS NOT NULL
       OR cl.token IS DISTINCT FROM COALESCE(release_lean.token, cl.token) THEN
        RETURN capacity.release(release_lean.claim_id, release_lean.token);
    END IF;
    UPDATE capacity.codes AS k SET usage_count = k.usage_count - 1
     WHERE k.code_id = cl.code_id AND k.usage_count > 0 AND k.slots = 0
    RETURNING * INTO c;
    IF NOT FOUND THEN
        RETURN capacity.release(release_lean.claim_id, release_lean.token);
    END IF;
    UPDATE capacity.claims AS k
       SET released_at = pg_catalog.now(), end_reason = 'released'
     WHERE k.claim_id = cl.claim_id AND k.released_at IS NULL
    RETURNING * INTO ended;
    IF NOT FOUND THEN
        UPDATE capacity.codes AS k SET usage_count = k.usage_count + 1 WHERE k.code_id = cl.code_id;
        RETURN capacity.release(release_lean.claim_id, release_lean.token);
    END IF;
    PERFORM capacity._lock_holder_shared(ended.pool, ended.holder);
    UPDATE capacity.holders AS k SET active_claims = k.active_claims - 1
     WHERE k.pool = ended.pool AND k.holder = ended.holder;
    INSERT INTO capacity.events (kind, code_id, code, pool, holder, claim_id, usage_after)
    VALUES ('released', c.code_id, c.code, c.pool, ended.holder, ended.claim_id, c.usage_count);
    INSERT INTO capacity.pending_changes (codes) VALUES (ARRAY[c.code]);
    RETURN ROW(cl.claim_id, c.code, cl.holder, true, c.usage_count,
               c.max_uses - c.usage_count)::capacity.release_result;
END
$$;

-- claim_lean without the code row's look-up (the fewest statements; see above).
CREATE OR REPLACE FUNCTION capacity.claim_lean2(code text, holder text, lock_mode text DEFAULT 'advisory')
RETURNS capacity.claim_result
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    v_code  text := pg_catalog.upper(pg_catalog.btrim(claim_lean2.code, E' \t\r\n'));
    c       capacity.codes;
    cl      capacity.claims;
    v_limit integer;
BEGIN
    IF NOT COALESCE(pg_catalog.char_length(v_code) BETWEEN 1 AND 64
                AND pg_catalog.ltrim(v_code, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-') = ''
                AND pg_catalog.char_length(claim_lean2.holder) BETWEEN 1 AND 256
                AND claim_lean2.holder !~ '[[:cntrl:]]' AND claim_lean2.holder ~ '[^[:space:]]'
                AND claim_lean2.lock_mode IN ('wait', 'advisory'), false) THEN
        RETURN capacity.claim(claim_lean2.code, claim_lean2.holder, claim_lean2.lock_mode);
    END IF;
    IF claim_lean2.lock_mode = 'advisory' THEN
        PERFORM pg_catalog.pg_advisory_xact_lock(capacity._lock_namespace(), pg_catalog.hashtext(v_code));
    END IF;
    UPDATE capacity.codes AS k SET usage_count = k.usage_count + 1
     WHERE k.code = v_code AND k.slots = 0 AND k.usage_count < k.max_uses AND k.is_active
       AND (k.expires_at IS NULL OR k.expires_at > pg_catalog.now())
    RETURNING * INTO c;
    IF NOT FOUND THEN
        RETURN capacity.claim(claim_lean2.code, claim_lean2.holder, claim_lean2.lock_mode);
    END IF;
    INSERT INTO capacity.claims AS k (code_id, pool, holder)
    VALUES (c.code_id, c.pool, claim_lean2.holder)
    ON CONFLICT (code_id, holder) WHERE released_at IS NULL DO NOTHING
    RETURNING * INTO cl;
    IF NOT FOUND THEN
        UPDATE capacity.codes AS k SET usage_count = k.usage_count - 1 WHERE k.code_id = c.code_id;
        RETURN capacity.claim(claim_lean2.code, claim_lean2.holder, claim_lean2.lock_mode);
    END IF;
    PERFORM capacity._lock_holder_shared(cl.pool, cl.holder);
    SELECT k.max_claims INTO v_limit FROM capacity.holders AS k
     WHERE k.pool = cl.pool AND k.holder = cl.holder;
    IF FOUND THEN
        UPDATE capacity.holders AS k SET active_claims = k.active_claims + 1
         WHERE k.pool = cl.pool AND k.holder = cl.holder AND k.active_claims < k.max_claims;
        IF NOT FOUND THEN
            PERFORM capacity._raise_holder_limit(cl.pool, cl.holder, v_limit);
        END IF;
    END IF;
    INSERT INTO capacity.events (kind, code_id, code, pool, holder, claim_id, usage_after)
    VALUES ('claimed', c.code_id, c.code, c.pool, cl.holder, cl.claim_id, c.usage_count);
    INSERT INTO capacity.pending_changes (codes, pool, claims) VALUES (ARRAY[c.code], c.pool, 1);
    RETURN ROW(cl.claim_id, cl.token, c.code, cl.holder, c.usage_count, c.max_uses,
               c.max_uses - c.usage_count, false, cl.claimed_at)::capacity.claim_result;
END
$$;

