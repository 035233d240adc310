-- Creates or updates many codes from a JSON array of
-- {code, max_uses, pool?, is_active?, expires_at?, metadata?, slots?, lease?, max_total_claims?}.
-- Absent optional keys keep the stored value. All or nothing: refuses max_uses below
-- current usage and max_total_claims below the claims admitted (CAPACITY_BELOW_USAGE), and
-- a redemption cap on a slotted code. A constant number of statements, whatever the batch
-- size.
CREATE OR REPLACE FUNCTION capacity.upsert_codes(codes jsonb)
RETURNS TABLE (inserted integer, updated integer)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    v_specs   capacity._code_spec[];
    v_pending text[];
    v_dup     text;
    v_bad     record;
    v_n       integer;
BEGIN
    SELECT array_agg(s ORDER BY s.code) INTO v_specs
      FROM capacity._code_specs(upsert_codes.codes) AS s;
    SELECT s.code INTO v_dup FROM unnest(v_specs) AS s GROUP BY s.code HAVING count(*) > 1
     ORDER BY s.code LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'VALIDATION_ERROR: code % appears more than once in codes', v_dup
            USING ERRCODE = 'CP001', DETAIL = jsonb_build_object('field', 'codes', 'code', v_dup)::text,
                  HINT = 'List each code once per call.';
    END IF;
    v_pending := array(SELECT s.code FROM unnest(v_specs) AS s);
    inserted := 0;
    updated := 0;
    -- A concurrent upsert may create one of our new codes between our UPDATE and INSERT;
    -- ON CONFLICT DO NOTHING then skips it and the next pass updates it.
    FOR pass IN 1..3 LOOP
        EXIT WHEN cardinality(v_pending) = 0;
        -- Lock existing rows in code_id order (the documented lock order).
        PERFORM 1 FROM capacity.codes AS c WHERE c.code = ANY (v_pending)
          ORDER BY c.code_id FOR NO KEY UPDATE;
        SELECT t.code, t.usage_count, t.new_max INTO v_bad
          FROM (SELECT c.code, s.max_uses AS new_max,
                       capacity._total_usage(c) AS usage_count
                  FROM capacity.codes AS c
                  JOIN unnest(v_specs) AS s ON s.code = c.code
                 WHERE c.code = ANY (v_pending)) AS t
         WHERE t.new_max < t.usage_count
         ORDER BY t.code LIMIT 1;
        IF FOUND THEN
            PERFORM capacity._raise_capacity_below_usage(v_bad.code, v_bad.usage_count, v_bad.new_max);
        END IF;
        -- A capped code counts its claims on its row, so it is never slotted (looked at
        -- under the lock: a code slotted meanwhile by tune_slots is seen as such).
        SELECT s.code INTO v_dup
          FROM unnest(v_specs) AS s LEFT JOIN capacity.codes AS c ON c.code = s.code
         WHERE s.code = ANY (v_pending)
           AND (CASE WHEN s.has_max_total THEN s.max_total_claims ELSE c.max_total_claims END) IS NOT NULL
           AND ((s.has_slots AND s.slots > 0) OR c.slots > 0)
         ORDER BY s.code LIMIT 1;
        IF FOUND THEN
            RAISE EXCEPTION 'VALIDATION_ERROR: code % cannot have both slots and max_total_claims', v_dup
                USING ERRCODE = 'CP001', DETAIL = jsonb_build_object('field', 'codes', 'code', v_dup)::text,
                      HINT = 'Make the code plain first ("slots": 0), then cap it; tune_slots leaves capped codes plain.';
        END IF;
        -- A cap set now counts the claims recorded so far (this statement's snapshot comes
        -- after the lock above: every claim of a plain code made before it is visible).
        SELECT t.code, t.admitted, t.new_cap INTO v_bad
          FROM (SELECT c.code, s.max_total_claims AS new_cap,
                       COALESCE(c.total_claims, (SELECT count(*)::integer FROM capacity.claims AS k
                                                  WHERE k.code_id = c.code_id)) AS admitted
                  FROM capacity.codes AS c
                  JOIN unnest(v_specs) AS s ON s.code = c.code
                 WHERE c.code = ANY (v_pending) AND s.has_max_total AND s.max_total_claims IS NOT NULL) AS t
         WHERE t.new_cap < t.admitted
         ORDER BY t.code LIMIT 1;
        IF FOUND THEN
            PERFORM capacity._raise_total_below_admitted(v_bad.code, v_bad.admitted, v_bad.new_cap);
        END IF;

        WITH done AS (
            UPDATE capacity.codes AS c
               SET max_uses   = s.max_uses,
                   pool       = CASE WHEN s.has_pool THEN s.pool ELSE c.pool END,
                   is_active  = CASE WHEN s.has_active THEN s.is_active ELSE c.is_active END,
                   expires_at = CASE WHEN s.has_expires THEN s.expires_at ELSE c.expires_at END,
                   metadata   = CASE WHEN s.has_metadata THEN s.metadata ELSE c.metadata END,
                   lease      = CASE WHEN s.has_lease THEN s.lease ELSE c.lease END,
                   max_total_claims = CASE WHEN s.has_max_total THEN s.max_total_claims ELSE c.max_total_claims END,
                   total_claims = CASE WHEN NOT s.has_max_total THEN c.total_claims
                                       WHEN s.max_total_claims IS NULL THEN NULL
                                       ELSE COALESCE(c.total_claims, (SELECT count(*)::integer FROM capacity.claims AS k
                                                                       WHERE k.code_id = c.code_id)) END,
                   updated_at = now()
              FROM unnest(v_specs) AS s
             WHERE s.code = c.code AND c.code = ANY (v_pending)
            RETURNING c.code
        )
        SELECT array(SELECT unnest(v_pending) EXCEPT SELECT code FROM done), (SELECT count(*) FROM done)
          INTO v_pending, v_n;
        updated := updated + v_n;

        WITH added AS (
            INSERT INTO capacity.codes AS c (code, max_uses, pool, is_active, expires_at, metadata, lease,
                                             max_total_claims, total_claims)
            SELECT s.code, s.max_uses, COALESCE(s.pool, 'default'), COALESCE(s.is_active, true),
                   s.expires_at, COALESCE(s.metadata, '{}'), s.lease,
                   s.max_total_claims, CASE WHEN s.max_total_claims IS NOT NULL THEN 0 END
              FROM unnest(v_specs) AS s
             WHERE s.code = ANY (v_pending)
             ORDER BY s.code
            ON CONFLICT (code) DO NOTHING
            RETURNING c.code
        )
        SELECT array(SELECT unnest(v_pending) EXCEPT SELECT code FROM added), (SELECT count(*) FROM added)
          INTO v_pending, v_n;
        inserted := inserted + v_n;
    END LOOP;
    IF cardinality(v_pending) > 0 THEN
        RAISE EXCEPTION 'LOCK_CONTENDED: codes % kept changing under concurrent upserts', v_pending
            USING ERRCODE = 'CP008', HINT = 'Retry the batch.';
    END IF;
    -- Slotted codes (and codes switching) get their slot rows re-sliced to the new
    -- capacity; the code rows are locked already, in code_id order.
    PERFORM capacity._resize_slots(c.code_id, CASE WHEN s.has_slots THEN s.slots ELSE c.slots END)
       FROM capacity.codes AS c
       JOIN unnest(v_specs) AS s ON s.code = c.code
      WHERE (s.has_slots AND s.slots <> c.slots) OR c.slots > 0
      ORDER BY c.code_id;
    RETURN NEXT;
END
$$;
