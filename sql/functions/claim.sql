-- Claims `units` units of a code for a holder (all or none), inside the caller's
-- transaction, with a lease when one is given (or the code has one). Idempotent per
-- (code, holder): a holder that already holds the code gets its claim back
-- (already_held = true, with the units it holds, whatever `units` says) and takes nothing
-- more. Never exceeds max_uses, max_total_claims or the holder limit (which counts
-- claims). Claims past their lease do not count: when the code is full, claim() ends as
-- many as it needs.
CREATE OR REPLACE FUNCTION capacity.claim(
    code text, holder text, lock_mode text DEFAULT 'advisory', units integer DEFAULT 1,
    lease interval DEFAULT NULL)
RETURNS capacity.claim_result
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    v_code   text := capacity._require_code(claim.code);
    v_holder text := capacity._require_holder(claim.holder);
    v_mode   text := capacity._require_lock_mode(claim.lock_mode);
    v_units  integer := claim.units;
    v_lease  interval;
    c        capacity.codes;
    cl       capacity.claims;
    h        capacity.holders;
    result   capacity.claim_result;
    v_id     bigint;
    v_lapsed bigint;  -- the holder's claim past its lease, ended below
BEGIN
    -- 1. Unlocked look-ups answer the cheap cases without touching a lock.
    SELECT * INTO c FROM capacity.codes AS k WHERE k.code = v_code;
    IF NOT FOUND THEN
        PERFORM capacity._raise_code_not_found(v_code);
    END IF;
    -- The pool's shared lock (see _finish_claim) before any row lock: a set_pool_limit
    -- waiting for it then never stands between two claims that wait for each other's rows.
    PERFORM capacity._lock_pool(c.pool, true);
    LOOP
        SELECT * INTO cl FROM capacity.claims AS k
         WHERE k.code_id = c.code_id AND k.holder = v_holder AND k.released_at IS NULL;
        EXIT WHEN NOT FOUND OR cl.claim_id = v_lapsed;
        IF cl.lease_expires_at IS NULL OR cl.lease_expires_at > pg_catalog.now() THEN
            c := capacity._with_total_usage(c);
            RETURN capacity._claim_result(c, cl, true);
        END IF;
        -- The holder's claim is past its lease: it ends (expired), and this is a new claim,
        -- unless a concurrent claim of the same holder made one meanwhile (look again).
        -- (Still there the second time: it is locked by someone ending it; go on.)
        v_lapsed := cl.claim_id;
        PERFORM capacity._end_lapsed_claims(c.code_id, v_mode, 0, v_holder);
        SELECT * INTO STRICT c FROM capacity.codes AS k WHERE k.code_id = c.code_id;
    END LOOP;
    IF v_units IS NULL OR v_units < 1 THEN
        PERFORM capacity._raise_bad_units(v_units);
    END IF;
    v_lease := COALESCE(claim.lease, c.lease);
    IF v_lease < interval '1 second' THEN
        PERFORM capacity._raise_bad_lease(v_lease);
    END IF;
    -- (A slotted code's row counts only units outside its slots: this catches
    -- inactive, expired and codes whose capacity is all outside the slots.)
    IF capacity._blocker(c) IS NOT NULL OR c.usage_count > c.max_uses - v_units THEN
        IF capacity._lacks_room_only(c, v_units) AND capacity._end_lapsed_claims(c.code_id, v_mode, v_units, NULL) > 0 THEN
            SELECT * INTO STRICT c FROM capacity.codes AS k WHERE k.code_id = c.code_id;
        END IF;
        PERFORM capacity._raise_if_blocked(c, v_units);
    END IF;
    SELECT * INTO h FROM capacity.holders AS k WHERE k.pool = c.pool AND k.holder = v_holder;
    IF h.max_claims IS NOT NULL AND h.active_claims >= h.max_claims THEN
        PERFORM capacity._raise_holder_limit(c.pool, v_holder, h.max_claims);
    END IF;

    -- 2a. A slotted code: take a unit from one of its slot rows, never the code row.
    IF c.slots > 0 THEN
        result := capacity._claim_from_slot(c, v_holder, v_mode, v_units, v_lease);
        IF result.claim_id IS NOT NULL THEN  -- (a row IS NOT NULL only when no field is null)
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
    UPDATE capacity.codes AS k SET usage_count = k.usage_count + v_units, total_claims = k.total_claims + 1
     WHERE k.code_id = v_id AND k.slots = 0 AND k.usage_count <= k.max_uses - v_units AND k.is_active
       AND (k.expires_at IS NULL OR k.expires_at > pg_catalog.now())
       AND (k.total_claims IS NULL OR k.total_claims < k.max_total_claims)
    RETURNING * INTO c;
    IF NOT FOUND THEN
        -- Full, blocked or slotted now (c is all NULL): decide on the locked row.
        c := capacity._lock_code(v_id, v_mode);
        IF c.slots > 0 THEN
            RETURN capacity._claim_from_slot(c, v_holder, v_mode, v_units, v_lease);
        END IF;
        SELECT * INTO cl FROM capacity.claims AS k
         WHERE k.code_id = c.code_id AND k.holder = v_holder AND k.released_at IS NULL;
        IF FOUND THEN
            RETURN capacity._claim_result(c, cl, true);
        END IF;
        IF capacity._lacks_room_only(c, v_units)
           AND capacity._end_lapsed_claims(c.code_id, v_mode, v_units, NULL) > 0 THEN
            SELECT * INTO STRICT c FROM capacity.codes AS k WHERE k.code_id = v_id;
        END IF;
        PERFORM capacity._raise_if_blocked(c, v_units);
        UPDATE capacity.codes AS k SET usage_count = k.usage_count + v_units, total_claims = k.total_claims + 1
         WHERE k.code_id = c.code_id
        RETURNING * INTO c;  -- units were freed since the conditional update
    END IF;

    LOOP
        INSERT INTO capacity.claims AS k (code_id, pool, holder, units, lease, lease_expires_at)
        VALUES (c.code_id, c.pool, v_holder, v_units, v_lease, pg_catalog.now() + v_lease)
        ON CONFLICT (code_id, holder) WHERE released_at IS NULL DO NOTHING
        RETURNING * INTO cl;
        EXIT WHEN FOUND;
        -- The same holder's concurrent claim committed first: that is the claim, and the
        -- units go back. If it ended meanwhile (a claim from a slot, released from its
        -- slot while the code was being made plain), the insert is tried again.
        SELECT * INTO cl FROM capacity.claims AS k
         WHERE k.code_id = c.code_id AND k.holder = v_holder AND k.released_at IS NULL;
        IF FOUND THEN
            UPDATE capacity.codes AS k SET usage_count = k.usage_count - v_units, total_claims = k.total_claims - 1
             WHERE k.code_id = c.code_id
            RETURNING * INTO c;
            RETURN capacity._claim_result(c, cl, true);
        END IF;
    END LOOP;
    RETURN capacity._finish_claim(c, cl);
END
$$;

-- What only claim() runs, below: its result row, its refusals, the lock modes of a plain
-- code, the end of every new claim, and the slotted half (docs/architecture.md).

-- claim()'s result row for a claim on a code (c: the code with its whole usage). Its fence
-- is the claim id, drawn from the claims' sequence after the units were taken: a claim
-- granted after another ended always has a larger one.
CREATE OR REPLACE FUNCTION capacity._claim_result(c capacity.codes, cl capacity.claims, p_already_held boolean)
RETURNS capacity.claim_result
LANGUAGE sql IMMUTABLE
AS $$
    SELECT ROW(cl.claim_id, cl.token, c.code, cl.holder, c.usage_count, c.max_uses,
               c.max_uses - c.usage_count, p_already_held, cl.claimed_at,
               cl.units, cl.lease_expires_at, cl.claim_id)::capacity.claim_result
$$;

-- Raises VALIDATION_ERROR for a claim's units below 1 or null. (More units than the
-- code's max_uses is CODE_FULL, as for a code of capacity 0: capacity can be raised.)
CREATE OR REPLACE FUNCTION capacity._raise_bad_units(p_units integer)
RETURNS void
LANGUAGE plpgsql IMMUTABLE
AS $$
BEGIN
    RAISE EXCEPTION 'VALIDATION_ERROR: units must be at least 1, got %', COALESCE(p_units::text, 'null')
        USING ERRCODE = 'CP001', DETAIL = pg_catalog.jsonb_build_object('field', 'units')::text,
              HINT = 'Claim 1 unit (the default) or more, at most the code''s max_uses.';
END
$$;

-- Raises the error a claim of p_units on this code gets now, if any (c: the code with
-- the usage to judge by). Full means fewer than p_units units are free.
CREATE OR REPLACE FUNCTION capacity._raise_if_blocked(c capacity.codes, p_units integer)
RETURNS void
LANGUAGE plpgsql STABLE
AS $$
DECLARE
    -- Full: fewer than p_units free (compared without overflowing for huge p_units).
    v_blocker text := COALESCE(capacity._blocker(c),
                               CASE WHEN c.usage_count > c.max_uses - p_units THEN 'CODE_FULL' END);
    v_detail  text;
BEGIN
    IF v_blocker IS NULL THEN
        RETURN;  -- the common case: no error detail to build
    END IF;
    v_detail := (pg_catalog.jsonb_build_object(
        'code', c.code, 'pool', c.pool, 'usage_count', c.usage_count, 'max_uses', c.max_uses,
        'units', p_units, 'is_active', c.is_active, 'expires_at', c.expires_at)
        || CASE WHEN c.max_total_claims IS NULL THEN '{}'::jsonb
                ELSE pg_catalog.jsonb_build_object('total_claims', c.total_claims,
                                                   'max_total_claims', c.max_total_claims) END)::text;
    CASE v_blocker
    WHEN 'CODE_INACTIVE' THEN
        RAISE EXCEPTION 'CODE_INACTIVE: code % is not active', c.code
            USING ERRCODE = 'CP003', DETAIL = v_detail,
                  HINT = 'Reactivate the code with upsert_codes ("is_active": true), or use another code.';
    WHEN 'CODE_EXPIRED' THEN
        RAISE EXCEPTION 'CODE_EXPIRED: code % expired at %', c.code, c.expires_at
            USING ERRCODE = 'CP004', DETAIL = v_detail,
                  HINT = 'Move expires_at later (or to null) with upsert_codes, or use another code.';
    WHEN 'CODE_EXHAUSTED' THEN
        RAISE EXCEPTION 'CODE_EXHAUSTED: code % has admitted all of its % claims', c.code, c.max_total_claims
            USING ERRCODE = 'CP017', DETAIL = v_detail,
                  HINT = 'Raise max_total_claims with upsert_codes, or use another code.';
    WHEN 'CODE_FULL' THEN
        RAISE EXCEPTION 'CODE_FULL: code % has %/% uses%', c.code, c.usage_count, c.max_uses,
                        CASE WHEN p_units > 1 THEN pg_catalog.format(', %s units wanted', p_units) ELSE '' END
            USING ERRCODE = 'CP005', DETAIL = v_detail,
                  HINT = 'Retry after a claim is released or expired.';
    ELSE
        NULL;
    END CASE;
END
$$;

-- Raises VALIDATION_ERROR for a lease shorter than a second (or negative).
CREATE OR REPLACE FUNCTION capacity._raise_bad_lease(p_lease interval)
RETURNS void
LANGUAGE plpgsql IMMUTABLE
AS $$
BEGIN
    RAISE EXCEPTION 'VALIDATION_ERROR: lease must be at least 1 second, got %', p_lease
        USING ERRCODE = 'CP001', DETAIL = pg_catalog.jsonb_build_object('field', 'lease')::text,
              HINT = 'Pass a lease such as ''15 minutes'', or null for the code''s default.';
END
$$;

-- Whether the only thing keeping a claim of p_units units off this code (c: with its
-- whole usage) is room: it is active, unexpired and not exhausted, but fewer units are free. Only then
-- can ending claims past their lease help.
CREATE OR REPLACE FUNCTION capacity._lacks_room_only(c capacity.codes, p_units integer)
RETURNS boolean
LANGUAGE sql STABLE
AS $$
    SELECT c.is_active AND (c.expires_at IS NULL OR c.expires_at > pg_catalog.now())
           AND (c.total_claims IS NULL OR c.total_claims < c.max_total_claims)
           AND c.usage_count > c.max_uses - p_units
$$;

-- Ends claims of a code that are past their lease (end_reason expired), so that a claim
-- of p_units units finds room: the oldest first, only as many as it takes, and always
-- p_holder's own (its claim can then be made again). Returns how many it ended; 0, with no
-- lock taken, when the code has none. Takes the code's lock as a claim in p_mode would,
-- then the slots holding them (lock order: code, slots, claims); claims locked right now
-- (a release, or assert_held in an open transaction) are skipped.
CREATE OR REPLACE FUNCTION capacity._end_lapsed_claims(
    p_code_id bigint, p_mode text, p_units integer, p_holder text)
RETURNS integer
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    c       capacity.codes;
    cl      capacity.claims;
    v_free  bigint;
    v_ended integer := 0;
BEGIN
    PERFORM 1 FROM capacity.claims AS k
     WHERE k.code_id = p_code_id AND k.released_at IS NULL AND k.lease_expires_at <= pg_catalog.now();
    IF NOT FOUND THEN
        RETURN 0;
    END IF;
    c := capacity._lock_code(p_code_id, p_mode);
    PERFORM 1 FROM capacity.code_slots AS s
     WHERE s.code_id = p_code_id
       AND s.slot_id IN (SELECT k.slot_id FROM capacity.claims AS k
                          WHERE k.code_id = p_code_id AND k.released_at IS NULL
                            AND k.lease_expires_at <= pg_catalog.now())
     ORDER BY s.slot
       FOR NO KEY UPDATE;
    v_free := c.max_uses - capacity._total_usage(c);
    FOR cl IN SELECT * FROM capacity.claims AS k
               WHERE k.code_id = p_code_id AND k.released_at IS NULL
                 AND k.lease_expires_at <= pg_catalog.now()
               ORDER BY (k.holder = p_holder) IS NOT TRUE, k.lease_expires_at, k.claim_id
                 FOR UPDATE SKIP LOCKED
    LOOP
        EXIT WHEN v_free >= p_units AND cl.holder IS DISTINCT FROM p_holder;
        IF (capacity._end_claim(cl, 'expired')).released THEN
            v_free := v_free + cl.units;
            v_ended := v_ended + 1;
        END IF;
    END LOOP;
    RETURN v_ended;
END
$$;

-- Raises HOLDER_LIMIT_EXCEEDED for a holder in a pool.
CREATE OR REPLACE FUNCTION capacity._raise_holder_limit(p_pool text, p_holder text, p_limit integer)
RETURNS void
LANGUAGE plpgsql IMMUTABLE
AS $$
BEGIN
    RAISE EXCEPTION 'HOLDER_LIMIT_EXCEEDED: holder % already holds %/% claims in pool %',
                    capacity._quote_input(p_holder), p_limit, p_limit, p_pool
        USING ERRCODE = 'CP006',
              DETAIL = pg_catalog.jsonb_build_object('pool', p_pool, 'holder', p_holder, 'max_claims', p_limit)::text,
              HINT = 'Release one of the holder''s claims first.';
END
$$;

-- Locks one code row according to the lock mode and returns its current version.
-- Every mode ends holding the row lock, so correctness never depends on the mode;
-- the mode only decides how contenders queue (row lock, bounded NOWAIT retries, or
-- a transaction-scoped advisory lock on the code).
CREATE OR REPLACE FUNCTION capacity._lock_code(p_code_id bigint, p_mode text)
RETURNS capacity.codes
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    c          capacity.codes;
    v_attempts integer;
BEGIN
    IF p_mode = 'advisory' THEN
        PERFORM pg_catalog.pg_advisory_xact_lock(capacity._lock_namespace(), (p_code_id % 2147483647)::integer);
    END IF;
    IF p_mode <> 'nowait' THEN
        SELECT * INTO STRICT c FROM capacity.codes WHERE code_id = p_code_id FOR NO KEY UPDATE;
        RETURN c;
    END IF;
    v_attempts := capacity._nowait_attempts();
    FOR attempt IN 1..GREATEST(v_attempts, 1) LOOP
        BEGIN
            SELECT * INTO STRICT c FROM capacity.codes WHERE code_id = p_code_id FOR NO KEY UPDATE NOWAIT;
            RETURN c;
        EXCEPTION WHEN lock_not_available THEN
            IF attempt < v_attempts THEN
                PERFORM capacity._nowait_backoff(attempt);
            END IF;
        END;
    END LOOP;
    SELECT * INTO c FROM capacity.codes WHERE code_id = p_code_id;
    RAISE EXCEPTION 'LOCK_CONTENDED: code % stayed locked after % NOWAIT attempts', c.code, v_attempts
        USING ERRCODE = 'CP008',
              DETAIL = pg_catalog.jsonb_build_object('code', c.code, 'attempts', v_attempts)::text,
              HINT = 'Retry later, or use lock_mode => ''advisory'' to queue instead of failing.';
END
$$;

-- NOWAIT attempts before LOCK_CONTENDED (SET pgcapacity.nowait_attempts; default 6).
CREATE OR REPLACE FUNCTION capacity._nowait_attempts()
RETURNS integer
LANGUAGE sql STABLE
AS $$ SELECT COALESCE(NULLIF(pg_catalog.current_setting('pgcapacity.nowait_attempts', true), '')::integer, 6) $$;

-- Sleeps after failed NOWAIT attempt n: exponential backoff with full jitter,
-- U(0, base * 2^(n-1)) ms (SET pgcapacity.nowait_backoff_ms; default 2).
CREATE OR REPLACE FUNCTION capacity._nowait_backoff(p_attempt integer)
RETURNS void
LANGUAGE sql VOLATILE
AS $$
    SELECT pg_catalog.pg_sleep(pg_catalog.random()
        * COALESCE(NULLIF(pg_catalog.current_setting('pgcapacity.nowait_backoff_ms', true), '')::double precision, 2)
        * (2 ^ (p_attempt - 1)) / 1000.0)
$$;

-- The end of every successful new claim: counts its units in its pool if the pool is
-- capped (POOL_FULL otherwise), counts it for its holder if the holder has a limit (the
-- conditional update is the limit check, under the holder row's lock, the last lock a
-- claim takes), logs and announces it, and returns claim()'s result. c: the code with
-- its whole usage. Plain statements, not helper calls, where every claim runs them
-- (PERFORM of a PL/pgSQL function costs a query of its own).
CREATE OR REPLACE FUNCTION capacity._finish_claim(c capacity.codes, cl capacity.claims)
RETURNS capacity.claim_result
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    v_stripes integer;
    v_limit   integer;
BEGIN
    -- Shared with every claim and release in this pool, exclusive in set_pool_limit.
    -- (Held since claim() began, unless the code moved to another pool meanwhile.)
    PERFORM capacity._lock_pool(cl.pool, true);
    SELECT p.stripes INTO v_stripes FROM capacity.pool_limits AS p WHERE p.pool = cl.pool;
    IF FOUND THEN
        PERFORM capacity._take_pool_units(cl.pool, v_stripes, cl.units);
    END IF;
    -- Shared with every claim and release of this holder, exclusive in set_holder_limit:
    -- the look below sees a counter row created meanwhile, and a counter created after
    -- this commits counts this claim.
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
    INSERT INTO capacity.events (kind, code_id, code, pool, holder, claim_id, usage_after, units)
    VALUES ('claimed', c.code_id, c.code, c.pool, cl.holder, cl.claim_id, c.usage_count, cl.units);
    INSERT INTO capacity.pending_changes (codes, pool, claims) VALUES (ARRAY[c.code], c.pool, 1);
    RETURN capacity._claim_result(c, cl, false);
END
$$;

-- Takes p_units units from one slot of a slotted code and returns the slot row's id; NULL
-- when the slots have fewer units free; -1 when the code is no longer slotted (the caller
-- falls back to the plain path); -2 when enough units are free but no single slot has
-- them all (the caller takes them across the slots).
--
-- First, without ever waiting: the unlocked slot with room nearest a random start
-- (FOR UPDATE SKIP LOCKED). That runs in a subtransaction because a row SKIP LOCKED
-- locks and then rejects on the re-check (it filled up meanwhile) stays locked: waiting
-- on another slot while holding it could deadlock, so a failed attempt is rolled back.
-- Then, only if every slot with room is locked right now: wait for one of them (nowait:
-- retry with backoff, then LOCK_CONTENDED). A claim therefore reports CODE_FULL only
-- when the committed state of every slot is full, never because free slots were busy.
-- (SQLSTATE CP099 only rolls a subtransaction back here: it is caught, never seen by callers.)
CREATE OR REPLACE FUNCTION capacity._take_slot(c capacity.codes, p_mode text, p_units integer)
RETURNS bigint
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    v_slot_id  bigint;
    v_free     bigint;
    v_slots    integer;
    v_waits    integer := 0;
    v_start    integer := pg_catalog.floor(pg_catalog.random() * c.slots)::integer;
BEGIN
    BEGIN
        -- From a random slot up, then wrapping around: an index range scan that stops
        -- at the first unlocked slot with room (ordering all slots costs a sort).
        UPDATE capacity.code_slots AS s SET used = s.used + p_units
         WHERE s.slot_id = (SELECT k.slot_id FROM capacity.code_slots AS k
                             WHERE k.code_id = c.code_id AND k.slot >= v_start AND k.used <= k.cap - p_units
                             ORDER BY k.slot LIMIT 1
                               FOR NO KEY UPDATE SKIP LOCKED)
        RETURNING s.slot_id INTO v_slot_id;
        IF v_slot_id IS NULL AND v_start > 0 THEN
            UPDATE capacity.code_slots AS s SET used = s.used + p_units
             WHERE s.slot_id = (SELECT k.slot_id FROM capacity.code_slots AS k
                                 WHERE k.code_id = c.code_id AND k.slot < v_start AND k.used <= k.cap - p_units
                                 ORDER BY k.slot LIMIT 1
                                   FOR NO KEY UPDATE SKIP LOCKED)
            RETURNING s.slot_id INTO v_slot_id;
        END IF;
        IF v_slot_id IS NOT NULL THEN
            RETURN v_slot_id;
        END IF;
        RAISE EXCEPTION 'no free unlocked slot' USING ERRCODE = 'CP099';
    EXCEPTION WHEN SQLSTATE 'CP099' THEN
        NULL;  -- rolled back: no stray row locks are kept
    END;

    LOOP
        -- The committed state now (a new snapshot): full, gone plain, or which slot to wait for.
        SELECT k.slots INTO v_slots FROM capacity.codes AS k WHERE k.code_id = c.code_id;
        IF v_slots = 0 THEN
            RETURN -1;
        END IF;
        SELECT sum(k.cap - k.used),
               (array_agg(k.slot_id ORDER BY pg_catalog.random()) FILTER (WHERE k.used <= k.cap - p_units))[1]
          INTO v_free, v_slot_id
          FROM capacity.code_slots AS k WHERE k.code_id = c.code_id;
        IF COALESCE(v_free, 0) < p_units THEN
            RETURN NULL;
        ELSIF v_slot_id IS NULL THEN
            RETURN -2;
        END IF;
        BEGIN
            IF p_mode = 'nowait' THEN
                PERFORM 1 FROM capacity.code_slots AS k WHERE k.slot_id = v_slot_id FOR NO KEY UPDATE NOWAIT;
            ELSE
                PERFORM 1 FROM capacity.code_slots AS k WHERE k.slot_id = v_slot_id FOR NO KEY UPDATE;
            END IF;
            UPDATE capacity.code_slots AS s SET used = s.used + p_units
             WHERE s.slot_id = v_slot_id AND s.used <= s.cap - p_units
            RETURNING s.slot_id INTO v_slot_id;
            IF v_slot_id IS NOT NULL THEN
                RETURN v_slot_id;
            END IF;
            RAISE EXCEPTION 'the slot filled up while we waited' USING ERRCODE = 'CP099';
        EXCEPTION
            WHEN SQLSTATE 'CP099' THEN
                NULL;  -- someone else took the unit: look again
            WHEN lock_not_available THEN
                v_waits := v_waits + 1;
                IF v_waits >= GREATEST(capacity._nowait_attempts(), 1) THEN
                    RAISE EXCEPTION 'LOCK_CONTENDED: every slot of code % with room stayed locked after % NOWAIT attempts',
                                    c.code, v_waits
                        USING ERRCODE = 'CP008',
                              DETAIL = pg_catalog.jsonb_build_object('code', c.code, 'attempts', v_waits)::text,
                              HINT = 'Retry later, or use lock_mode => ''wait'' to queue instead of failing.';
                END IF;
                PERFORM capacity._nowait_backoff(v_waits);
        END;
    END LOOP;
END
$$;

-- Claims p_units units of a slotted code from one slot (the slotted half of claim(); the
-- caller validated the input and did the unlocked pre-checks). Returns NULL when the code
-- turned plain meanwhile: the caller then takes the plain path.
CREATE OR REPLACE FUNCTION capacity._claim_from_slot(
    c capacity.codes, p_holder text, p_mode text, p_units integer, p_lease interval)
RETURNS capacity.claim_result
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    v_slot_id bigint;
    cl        capacity.claims;
BEGIN
    FOR attempt IN 1..3 LOOP
        v_slot_id := capacity._take_slot(c, p_mode, p_units);
        IF v_slot_id = -1 THEN
            RETURN NULL;
        ELSIF v_slot_id = -2 THEN
            RETURN capacity._claim_across_slots(c, p_holder, p_mode, p_units, p_lease);
        END IF;
        -- A fresh look now that we hold the units (or saw too few free): a revoke or a
        -- deactivation that committed meanwhile wins, as it would on a plain code.
        SELECT * INTO STRICT c FROM capacity.codes AS k WHERE k.code_id = c.code_id;
        IF v_slot_id IS NOT NULL THEN
            IF capacity._blocker(c) IN ('CODE_INACTIVE', 'CODE_EXPIRED') THEN
                PERFORM capacity._raise_if_blocked(c, p_units);
            END IF;
            EXIT;
        END IF;
        c := capacity._with_total_usage(c);
        IF capacity._lacks_room_only(c, p_units)
           AND capacity._end_lapsed_claims(c.code_id, p_mode, p_units, NULL) > 0 THEN
            CONTINUE;  -- claims past their lease gave units back: look again
        END IF;
        PERFORM capacity._raise_if_blocked(c, p_units);  -- full (or inactive, expired) now
        -- A unit was freed between the look at the slots and this one: try again.
    END LOOP;
    IF v_slot_id IS NULL THEN
        RAISE EXCEPTION 'CODE_FULL: code % has no % free units (units freed meanwhile were taken)', c.code, p_units
            USING ERRCODE = 'CP005',
                  DETAIL = pg_catalog.jsonb_build_object('code', c.code, 'pool', c.pool,
                                                         'usage_count', c.usage_count,
                                                         'max_uses', c.max_uses, 'units', p_units)::text,
                  HINT = 'Retry after a claim is released or expired.';
    END IF;

    LOOP
        INSERT INTO capacity.claims AS k (code_id, pool, holder, slot_id, units, lease, lease_expires_at)
        VALUES (c.code_id, c.pool, p_holder, v_slot_id, p_units, p_lease, pg_catalog.now() + p_lease)
        ON CONFLICT (code_id, holder) WHERE released_at IS NULL DO NOTHING
        RETURNING * INTO cl;
        EXIT WHEN FOUND;
        -- The same holder's concurrent claim committed first: that is the claim, and the
        -- units go back. Its release takes its own slot, not ours, so it may have ended
        -- meanwhile: then the units are still ours and the insert is tried again.
        SELECT * INTO cl FROM capacity.claims AS k
         WHERE k.code_id = c.code_id AND k.holder = p_holder AND k.released_at IS NULL;
        IF FOUND THEN
            UPDATE capacity.code_slots AS s SET used = s.used - p_units WHERE s.slot_id = v_slot_id;
            c := capacity._with_total_usage(c);
            RETURN capacity._claim_result(c, cl, true);
        END IF;
    END LOOP;
    c := capacity._with_total_usage(c);  -- one snapshot, our own unit included
    RETURN capacity._finish_claim(c, cl);
END
$$;

-- Claims p_units units of a slotted code that no single slot has free, though the slots
-- together do: with the code row and every slot row locked (lock order: code, slots in
-- slot order), the units are taken out of the slots' free capacity, lowest slot first,
-- and counted in the code row, where claims outside the slots are counted (their release
-- gives the units back to a slot). Rare and exclusive, like a re-slice: it waits for the
-- claims in flight on the code. Returns NULL when the code turned plain meanwhile.
CREATE OR REPLACE FUNCTION capacity._claim_across_slots(
    c capacity.codes, p_holder text, p_mode text, p_units integer, p_lease interval)
RETURNS capacity.claim_result
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    cl capacity.claims;
BEGIN
    c := capacity._lock_code(c.code_id, p_mode);
    IF c.slots = 0 THEN
        RETURN NULL;
    END IF;
    PERFORM 1 FROM capacity.code_slots AS s WHERE s.code_id = c.code_id ORDER BY s.slot FOR NO KEY UPDATE;
    SELECT * INTO cl FROM capacity.claims AS k
     WHERE k.code_id = c.code_id AND k.holder = p_holder AND k.released_at IS NULL;
    IF FOUND THEN
        RETURN capacity._claim_result(capacity._with_total_usage(c), cl, true);
    END IF;
    IF capacity._lacks_room_only(capacity._with_total_usage(c), p_units)
       AND capacity._end_lapsed_claims(c.code_id, p_mode, p_units, NULL) > 0 THEN
        SELECT * INTO STRICT c FROM capacity.codes AS k WHERE k.code_id = c.code_id;
    END IF;
    PERFORM capacity._raise_if_blocked(capacity._with_total_usage(c), p_units);
    WITH room AS (
        SELECT s.slot_id, s.cap - s.used AS free,
               sum(s.cap - s.used) OVER (ORDER BY s.slot) - (s.cap - s.used) AS before
          FROM capacity.code_slots AS s
         WHERE s.code_id = c.code_id AND s.used < s.cap
    )
    UPDATE capacity.code_slots AS s SET cap = s.cap - LEAST(r.free, p_units - r.before)
      FROM room AS r
     WHERE s.slot_id = r.slot_id AND r.before < p_units;
    UPDATE capacity.codes AS k SET usage_count = k.usage_count + p_units
     WHERE k.code_id = c.code_id
    RETURNING * INTO c;
    INSERT INTO capacity.claims AS k (code_id, pool, holder, units, lease, lease_expires_at)
    VALUES (c.code_id, c.pool, p_holder, p_units, p_lease, pg_catalog.now() + p_lease)
    RETURNING * INTO cl;  -- no conflict: another claim of this holder needs a row that is ours
    RETURN capacity._finish_claim(capacity._with_total_usage(c), cl);
END
$$;
