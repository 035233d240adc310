-- Re-slicing slotted codes: used by upsert_codes, tune_slots, revoke_code, reconcile and
-- the endings of claims counted outside the slots (docs/architecture.md, "Slotted codes").
-- Not granted to application roles; they run with the caller's pinned search_path, so
-- every object is schema-qualified.

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
