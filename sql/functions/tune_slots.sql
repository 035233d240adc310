-- Spreads hot plain codes over slot rows, without downtime: a plain code with at least
-- min_claims claims in the last minute gets `slots` slot rows (never more than its
-- max_uses). In-flight claims finish first (the code row is locked for the switch);
-- later ones take units from the slots. One tuner at a time; the API runs it every 10 s
-- (PGCAPACITY_HOT_CLAIMS_PER_MIN, PGCAPACITY_HOT_SLOTS). Returns the codes it switched.
-- jit = off, as in refresh_dashboard(): a periodic look at the last minute's events must
-- not pay for compiling its query whenever the events table has grown large.
CREATE OR REPLACE FUNCTION capacity.tune_slots(min_claims integer DEFAULT 600, slots integer DEFAULT 32)
RETURNS TABLE (code text, slot_count integer)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET jit = off
AS $$
#variable_conflict use_column
DECLARE
    r record;
BEGIN
    IF min_claims IS NULL OR min_claims < 1 THEN
        RAISE EXCEPTION 'VALIDATION_ERROR: min_claims must be at least 1, got %', COALESCE(min_claims::text, 'null')
            USING ERRCODE = 'CP001', DETAIL = jsonb_build_object('field', 'min_claims')::text,
                  HINT = 'Pass a positive number of claims per minute, or leave it out for the default.';
    END IF;
    IF tune_slots.slots IS NULL OR tune_slots.slots NOT BETWEEN 1 AND 256 THEN
        RAISE EXCEPTION 'VALIDATION_ERROR: slots must be between 1 and 256, got %', COALESCE(tune_slots.slots::text, 'null')
            USING ERRCODE = 'CP001', DETAIL = jsonb_build_object('field', 'slots')::text,
                  HINT = 'Pass slots from 1 to 256, or leave it out for the default.';
    END IF;
    IF NOT pg_try_advisory_xact_lock(capacity._lock_namespace(), -5) THEN
        RETURN;  -- another tuner is at work
    END IF;
    FOR r IN
        SELECT c.code_id, c.code, LEAST(tune_slots.slots, c.max_uses) AS n
          FROM capacity.codes AS c
          JOIN (SELECT e.code_id FROM capacity.events AS e
                 WHERE e.kind = 'claimed' AND e.occurred_at > now() - interval '1 minute'
                 GROUP BY e.code_id HAVING count(*) >= min_claims) AS hot USING (code_id)
         WHERE c.slots = 0 AND c.max_uses >= 2 AND c.max_total_claims IS NULL  -- capped: counted on its row
         ORDER BY c.code_id
    LOOP
        -- (Re-checked on the locked row: an upsert may have capped or sliced it meanwhile.)
        PERFORM 1 FROM capacity.codes AS k
         WHERE k.code_id = r.code_id AND k.slots = 0 AND k.max_total_claims IS NULL FOR NO KEY UPDATE;
        CONTINUE WHEN NOT FOUND;
        PERFORM capacity._resize_slots(r.code_id, r.n);
        code := r.code;
        slot_count := r.n;
        RETURN NEXT;
    END LOOP;
END
$$;
