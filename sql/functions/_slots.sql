-- Private helpers of slotted codes (migration 0004). Lock order: code row, slot rows by
-- slot, claim rows, holder rows.

-- Units in use in a code's slot rows (0 for a plain code). PL/pgSQL, not SQL: a SQL
-- function with a FROM clause cannot be inlined and is parsed and planned again in every
-- transaction; PL/pgSQL keeps its plan for the session.
CREATE OR REPLACE FUNCTION capacity._slot_usage(p_code_id bigint)
RETURNS integer
LANGUAGE plpgsql STABLE
AS $$
BEGIN
    RETURN (SELECT COALESCE(sum(s.used), 0)::integer FROM capacity.code_slots AS s WHERE s.code_id = p_code_id);
END
$$;

-- A code's whole usage: its row's count plus, for a slotted code, its slot rows.
CREATE OR REPLACE FUNCTION capacity._total_usage(c capacity.codes)
RETURNS integer
LANGUAGE sql STABLE
AS $$
    SELECT c.usage_count + CASE WHEN c.slots > 0 THEN capacity._slot_usage(c.code_id) ELSE 0 END
$$;

-- The code row with usage_count made the code's whole usage (slots included), for
-- status and results. One statement, so the total is from one snapshot.
CREATE OR REPLACE FUNCTION capacity._with_total_usage(c capacity.codes)
RETURNS capacity.codes
LANGUAGE plpgsql STABLE
AS $$
BEGIN
    c.usage_count := capacity._total_usage(c);
    RETURN c;
END
$$;

-- Takes one unit from a slot of a slotted code and returns the slot row's id; NULL when
-- every slot is full; -1 when the code is no longer slotted (the caller falls back to the
-- plain path).
--
-- First, without ever waiting: the unlocked slot with room nearest a random start
-- (FOR UPDATE SKIP LOCKED). That runs in a subtransaction because a row SKIP LOCKED
-- locks and then rejects on the re-check (it filled up meanwhile) stays locked: waiting
-- on another slot while holding it could deadlock, so a failed attempt is rolled back.
-- Then, only if every slot with room is locked right now: wait for one of them (nowait:
-- retry with backoff, then LOCK_CONTENDED). A claim therefore reports CODE_FULL only
-- when the committed state of every slot is full, never because free slots were busy.
-- (SQLSTATE CP099 only rolls a subtransaction back here: it is caught, never seen by callers.)
CREATE OR REPLACE FUNCTION capacity._take_slot(c capacity.codes, p_mode text)
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
        UPDATE capacity.code_slots AS s SET used = s.used + 1
         WHERE s.slot_id = (SELECT k.slot_id FROM capacity.code_slots AS k
                             WHERE k.code_id = c.code_id AND k.slot >= v_start AND k.used < k.cap
                             ORDER BY k.slot LIMIT 1
                               FOR NO KEY UPDATE SKIP LOCKED)
        RETURNING s.slot_id INTO v_slot_id;
        IF v_slot_id IS NULL AND v_start > 0 THEN
            UPDATE capacity.code_slots AS s SET used = s.used + 1
             WHERE s.slot_id = (SELECT k.slot_id FROM capacity.code_slots AS k
                                 WHERE k.code_id = c.code_id AND k.slot < v_start AND k.used < k.cap
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
               (array_agg(k.slot_id ORDER BY pg_catalog.random()) FILTER (WHERE k.used < k.cap))[1]
          INTO v_free, v_slot_id
          FROM capacity.code_slots AS k WHERE k.code_id = c.code_id;
        IF COALESCE(v_free, 0) = 0 THEN
            RETURN NULL;
        END IF;
        BEGIN
            IF p_mode = 'nowait' THEN
                PERFORM 1 FROM capacity.code_slots AS k WHERE k.slot_id = v_slot_id FOR NO KEY UPDATE NOWAIT;
            ELSE
                PERFORM 1 FROM capacity.code_slots AS k WHERE k.slot_id = v_slot_id FOR NO KEY UPDATE;
            END IF;
            UPDATE capacity.code_slots AS s SET used = s.used + 1
             WHERE s.slot_id = v_slot_id AND s.used < s.cap
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

-- Re-slices a code whose row the caller has locked: n slot rows (0 = plain), each slot's
-- cap = its used + a share of the free units, so that usage_count + sum(cap) = max_uses.
-- Slots that disappear fold their used units into codes.usage_count (their claims are
-- then counted there). Waits for in-flight claims on the slots (locks all of them).
CREATE OR REPLACE FUNCTION capacity._resize_slots(p_code_id bigint, p_slots integer)
RETURNS void
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    c       capacity.codes;
    v_fold  integer;
    v_free  integer;
    v_kept  integer;
BEGIN
    SELECT * INTO STRICT c FROM capacity.codes WHERE code_id = p_code_id;
    PERFORM 1 FROM capacity.code_slots AS s WHERE s.code_id = p_code_id ORDER BY s.slot FOR NO KEY UPDATE;
    -- Claims may have taken units since the caller checked: the usage is exact only now.
    v_kept := capacity._total_usage(c);
    IF v_kept > c.max_uses THEN
        PERFORM capacity._raise_capacity_below_usage(c.code, v_kept, c.max_uses);
    END IF;
    WITH gone AS (
        DELETE FROM capacity.code_slots AS s WHERE s.code_id = p_code_id AND s.slot >= p_slots
        RETURNING s.used
    )
    SELECT COALESCE(sum(gone.used), 0)::integer INTO v_fold FROM gone;
    INSERT INTO capacity.code_slots (code_id, slot, used, cap)
    SELECT p_code_id, i, 0, 0
      FROM generate_series(0, p_slots - 1) AS i
     WHERE NOT EXISTS (SELECT 1 FROM capacity.code_slots AS s WHERE s.code_id = p_code_id AND s.slot = i);
    UPDATE capacity.codes AS k
       SET usage_count = k.usage_count + v_fold, slots = p_slots
     WHERE k.code_id = p_code_id
    RETURNING * INTO c;
    IF p_slots = 0 THEN
        RETURN;
    END IF;
    v_free := c.max_uses - c.usage_count - capacity._slot_usage(p_code_id);
    -- Spread the free units evenly; the first (v_free % n) slots get one more.
    UPDATE capacity.code_slots AS s
       SET cap = s.used + v_free / p_slots + CASE WHEN s.slot < v_free % p_slots THEN 1 ELSE 0 END
     WHERE s.code_id = p_code_id;
END
$$;

-- Gives units freed from a slotted code's base count (claims made outside the slots) to
-- a slot so they stay claimable: the caller decremented codes.usage_count by p_units and
-- holds the code row; the first slot's cap grows by as much.
CREATE OR REPLACE FUNCTION capacity._return_base_units(p_code_id bigint, p_units integer)
RETURNS void
LANGUAGE plpgsql VOLATILE
AS $$
BEGIN
    UPDATE capacity.code_slots AS s SET cap = s.cap + p_units
     WHERE s.slot_id = (SELECT k.slot_id FROM capacity.code_slots AS k
                         WHERE k.code_id = p_code_id ORDER BY k.slot LIMIT 1);
END
$$;

-- Claims one unit of a slotted code (the slotted half of claim(); the caller validated
-- the input and did the unlocked pre-checks). Returns NULL when the code turned plain
-- meanwhile: the caller then takes the plain path.
CREATE OR REPLACE FUNCTION capacity._claim_from_slot(c capacity.codes, p_holder text, p_mode text)
RETURNS capacity.claim_result
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    v_slot_id bigint;
    cl        capacity.claims;
BEGIN
    FOR attempt IN 1..3 LOOP
        v_slot_id := capacity._take_slot(c, p_mode);
        IF v_slot_id = -1 THEN
            RETURN NULL;
        END IF;
        -- A fresh look now that we hold a unit (or saw every slot full): a revoke or a
        -- deactivation that committed meanwhile wins, as it would on a plain code.
        SELECT * INTO STRICT c FROM capacity.codes AS k WHERE k.code_id = c.code_id;
        IF v_slot_id IS NOT NULL THEN
            IF capacity._blocker(c) IN ('CODE_INACTIVE', 'CODE_EXPIRED') THEN
                PERFORM capacity._raise_if_blocked(c);
            END IF;
            EXIT;
        END IF;
        c := capacity._with_total_usage(c);
        PERFORM capacity._raise_if_blocked(c);  -- full (or inactive, expired) now
        -- A unit was freed between the look at the slots and this one: try again.
    END LOOP;
    IF v_slot_id IS NULL THEN
        RAISE EXCEPTION 'CODE_FULL: code % has no free unit (units freed meanwhile were taken)', c.code
            USING ERRCODE = 'CP005',
                  DETAIL = pg_catalog.jsonb_build_object('code', c.code, 'usage_count', c.usage_count,
                                                         'max_uses', c.max_uses)::text,
                  HINT = 'Retry after a claim is released or expired.';
    END IF;

    LOOP
        INSERT INTO capacity.claims AS k (code_id, pool, holder, slot_id)
        VALUES (c.code_id, c.pool, p_holder, v_slot_id)
        ON CONFLICT (code_id, holder) WHERE released_at IS NULL DO NOTHING
        RETURNING * INTO cl;
        EXIT WHEN FOUND;
        -- The same holder's concurrent claim committed first: that is the claim, and the
        -- unit goes back. Its release takes its own slot, not ours, so it may have ended
        -- meanwhile: then the unit is still ours and the insert is tried again.
        SELECT * INTO cl FROM capacity.claims AS k
         WHERE k.code_id = c.code_id AND k.holder = p_holder AND k.released_at IS NULL;
        IF FOUND THEN
            UPDATE capacity.code_slots AS s SET used = s.used - 1 WHERE s.slot_id = v_slot_id;
            c := capacity._with_total_usage(c);
            RETURN capacity._claim_result(c, cl, true);
        END IF;
    END LOOP;
    c := capacity._with_total_usage(c);  -- one snapshot, our own unit included
    RETURN capacity._finish_claim(c, cl);
END
$$;
