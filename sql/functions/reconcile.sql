-- Recomputes every usage counter from the live claims and returns the codes that drift
-- (none expected). With fix => true, repairs code, holder and pool counters and logs an event.
CREATE OR REPLACE FUNCTION capacity.reconcile(fix boolean DEFAULT false)
RETURNS TABLE (code text, usage_count integer, active_claims integer, drift integer)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    c         capacity.codes;
    v_holders integer;
    v_pool    text;
    v_used    integer;
    v_max     integer;
BEGIN
    IF fix IS NULL THEN
        RAISE EXCEPTION 'VALIDATION_ERROR: fix must be true or false'
            USING ERRCODE = 'CP001', DETAIL = jsonb_build_object('field', 'fix')::text,
                  HINT = 'Call reconcile() to report drift, reconcile(fix => true) to repair it.';
    END IF;
    IF fix THEN
        -- Freeze the counters of every code in the documented order before recounting.
        PERFORM 1 FROM capacity.codes AS k ORDER BY k.code_id FOR NO KEY UPDATE;
    END IF;
    -- The audit's rule for code counters (capacity._invariant_violations, _audit.sql).
    RETURN QUERY
        SELECT v.subject, v.found::integer, v.expected::integer, (v.found - v.expected)::integer
          FROM capacity._invariant_violations() AS v
         WHERE v.rule = 'usage_equals_active_claims'
         ORDER BY v.subject;
    IF NOT fix THEN
        RETURN;
    END IF;
    -- Slotted codes: recount each slot from its claims, then re-slice the capacity.
    PERFORM 1 FROM capacity.code_slots AS s ORDER BY s.code_id, s.slot FOR NO KEY UPDATE;
    UPDATE capacity.code_slots AS s
       SET used = a.n, cap = GREATEST(s.cap, a.n)
      FROM (SELECT s2.slot_id, COALESCE(sum(cl.units), 0)::integer AS n
              FROM capacity.code_slots AS s2
              LEFT JOIN capacity.claims AS cl ON cl.slot_id = s2.slot_id AND cl.released_at IS NULL
             GROUP BY s2.slot_id) AS a
     WHERE s.slot_id = a.slot_id AND s.used <> a.n;
    FOR c IN
        UPDATE capacity.codes AS k
           SET usage_count = a.n
          FROM (SELECT k2.code_id, COALESCE(sum(cl.units), 0)::integer AS n
                  FROM capacity.codes AS k2
                  LEFT JOIN capacity.claims AS cl
                    ON cl.code_id = k2.code_id AND cl.released_at IS NULL
                   AND (cl.slot_id IS NULL
                        OR NOT EXISTS (SELECT 1 FROM capacity.code_slots AS s WHERE s.slot_id = cl.slot_id))
                 GROUP BY k2.code_id) AS a
         WHERE k.code_id = a.code_id AND k.usage_count <> a.n
        RETURNING k.*
    LOOP
        PERFORM capacity._log('reconciled', capacity._with_total_usage(c), NULL, NULL);
        INSERT INTO capacity.pending_changes (codes) VALUES (ARRAY[c.code]);  -- usage_count is not a trigger column
    END LOOP;
    PERFORM capacity._resize_slots(k.code_id, k.slots)
       FROM capacity.codes AS k WHERE k.slots > 0 ORDER BY k.code_id;
    PERFORM 1 FROM capacity.holders AS h ORDER BY h.pool, h.holder FOR NO KEY UPDATE;
    UPDATE capacity.holders AS h
       SET active_claims = a.n, updated_at = now()
      FROM (SELECT h2.pool, h2.holder, count(cl.claim_id)::integer AS n
              FROM capacity.holders AS h2
              LEFT JOIN capacity.claims AS cl
                ON cl.pool = h2.pool AND cl.holder = h2.holder AND cl.released_at IS NULL
             GROUP BY h2.pool, h2.holder) AS a
     WHERE h.pool = a.pool AND h.holder = a.holder AND h.active_claims <> a.n;
    GET DIAGNOSTICS v_holders = ROW_COUNT;
    IF v_holders > 0 THEN
        RAISE NOTICE 'reconcile: repaired % holder counters', v_holders;
    END IF;
    -- Capped pools: each recounted under its exclusive lock (no claim or release in
    -- flight), its stripes laid out afresh. A pool with more units in use than its limit
    -- (a limit changed by hand) is left as it is; _invariant_violations() reports it.
    FOR v_pool IN SELECT p.pool FROM capacity.pool_limits AS p ORDER BY p.pool LOOP
        PERFORM capacity._lock_pool(v_pool, false);
        SELECT COALESCE(sum(cl.units), 0)::integer INTO v_used FROM capacity.claims AS cl
         WHERE cl.pool = v_pool AND cl.released_at IS NULL;
        SELECT p.max_units INTO v_max FROM capacity.pool_limits AS p WHERE p.pool = v_pool;
        IF v_used <= v_max
           AND (SELECT (COALESCE(sum(s.used), 0), COALESCE(sum(s.cap), 0)) <> (v_used::bigint, v_max::bigint)
                  FROM capacity.pool_stripes AS s WHERE s.pool = v_pool) THEN
            PERFORM capacity._spread_pool(v_pool, v_used);
            RAISE NOTICE 'reconcile: repaired the counters of pool %', v_pool;
        END IF;
    END LOOP;
END
$$;
