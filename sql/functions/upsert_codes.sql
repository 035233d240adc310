-- Parses and validates the JSON array given to upsert_codes(); one row per element.
CREATE OR REPLACE FUNCTION capacity._code_specs(p_codes jsonb)
RETURNS SETOF capacity._code_spec
LANGUAGE plpgsql STABLE
AS $$
DECLARE
    e       jsonb;
    i       integer := 0;
    v_key   text;
    v_field text;
    r       capacity._code_spec;
BEGIN
    IF p_codes IS NULL OR jsonb_typeof(p_codes) <> 'array' THEN
        RAISE EXCEPTION 'VALIDATION_ERROR: codes must be a JSON array of objects'
            USING ERRCODE = 'CP001', DETAIL = jsonb_build_object('field', 'codes')::text,
                  HINT = 'Pass a JSON array such as ''[{"code": "CLASS-7A", "max_uses": 400}]''.';
    END IF;
    FOR e IN SELECT value FROM jsonb_array_elements(p_codes) LOOP
        v_field := format('codes[%s]', i);
        IF jsonb_typeof(e) <> 'object' THEN
            RAISE EXCEPTION 'VALIDATION_ERROR: % must be an object', v_field
                USING ERRCODE = 'CP001', DETAIL = jsonb_build_object('field', v_field)::text,
                      HINT = 'Each element is an object such as {"code": "CLASS-7A", "max_uses": 400}.';
        END IF;
        SELECT k INTO v_key FROM jsonb_object_keys(e) AS k
         WHERE k NOT IN ('code', 'max_uses', 'pool', 'is_active', 'expires_at', 'metadata', 'slots', 'lease',
                         'max_total_claims')
         LIMIT 1;
        IF FOUND THEN
            RAISE EXCEPTION 'VALIDATION_ERROR: %.% is not a known field', v_field, v_key
                USING ERRCODE = 'CP001', DETAIL = jsonb_build_object('field', v_field || '.' || v_key)::text,
                      HINT = 'Known fields: code, max_uses, pool, is_active, expires_at, metadata, slots, lease, '
                             'max_total_claims.';
        END IF;
        IF jsonb_typeof(e -> 'code') IS DISTINCT FROM 'string' THEN
            RAISE EXCEPTION 'VALIDATION_ERROR: %.code must be a string', v_field
                USING ERRCODE = 'CP001', DETAIL = jsonb_build_object('field', v_field || '.code')::text,
                      HINT = 'Give each element a "code" string: 1-64 of A-Z, 0-9, "_" and "-".';
        END IF;
        r.code := capacity._require_code(e ->> 'code', v_field || '.code');
        r.max_uses := capacity._json_integer(e -> 'max_uses', v_field || '.max_uses', 2147483647,
                                             'Give each element a whole "max_uses" from 0 to 2147483647.');
        r.has_pool := e ? 'pool';
        -- Present, the pool must be a valid string (null and other types are refused).
        r.pool := CASE WHEN r.has_pool THEN capacity._require_pool(
                      CASE WHEN jsonb_typeof(e -> 'pool') = 'string' THEN e ->> 'pool' END) END;
        r.has_active := e ? 'is_active';
        IF r.has_active AND jsonb_typeof(e -> 'is_active') IS DISTINCT FROM 'boolean' THEN
            RAISE EXCEPTION 'VALIDATION_ERROR: %.is_active must be true or false', v_field
                USING ERRCODE = 'CP001', DETAIL = jsonb_build_object('field', v_field || '.is_active')::text,
                      HINT = 'Use true or false, or leave is_active out.';
        END IF;
        r.is_active := (e ->> 'is_active')::boolean;
        r.has_expires := e ? 'expires_at';
        r.expires_at := NULL;
        IF r.has_expires AND jsonb_typeof(e -> 'expires_at') <> 'null' THEN
            BEGIN
                IF jsonb_typeof(e -> 'expires_at') <> 'string' THEN
                    RAISE invalid_datetime_format;
                END IF;
                r.expires_at := (e ->> 'expires_at')::timestamptz;
            EXCEPTION WHEN invalid_datetime_format OR datetime_field_overflow THEN
                RAISE EXCEPTION 'VALIDATION_ERROR: %.expires_at must be an ISO 8601 timestamp or null', v_field
                    USING ERRCODE = 'CP001', DETAIL = jsonb_build_object('field', v_field || '.expires_at')::text,
                          HINT = 'Use a timestamp such as "2027-01-31T23:59:59Z", or null for no expiry.';
            END;
        END IF;
        r.has_metadata := e ? 'metadata';
        r.metadata := e -> 'metadata';
        IF r.has_metadata AND jsonb_typeof(r.metadata) <> 'object' THEN
            RAISE EXCEPTION 'VALIDATION_ERROR: %.metadata must be a JSON object', v_field
                USING ERRCODE = 'CP001', DETAIL = jsonb_build_object('field', v_field || '.metadata')::text,
                      HINT = 'Use a JSON object such as {"room": "B12"}, or leave metadata out.';
        END IF;
        r.has_slots := e ? 'slots';
        r.slots := NULL;
        IF r.has_slots THEN
            r.slots := capacity._json_integer(e -> 'slots', v_field || '.slots', 256,
                                              '0 makes the code plain; N spreads its capacity over N rows for hot codes.');
        END IF;
        r.has_lease := e ? 'lease';
        r.lease := NULL;
        IF r.has_lease AND jsonb_typeof(e -> 'lease') <> 'null' THEN
            BEGIN
                IF jsonb_typeof(e -> 'lease') = 'string' THEN
                    r.lease := (e ->> 'lease')::interval;
                END IF;
            EXCEPTION WHEN invalid_datetime_format OR datetime_field_overflow OR interval_field_overflow THEN
                r.lease := NULL;
            END;
            IF r.lease IS NULL OR r.lease < interval '1 second' THEN
                RAISE EXCEPTION 'VALIDATION_ERROR: %.lease must be an interval of at least 1 second, or null', v_field
                    USING ERRCODE = 'CP001', DETAIL = jsonb_build_object('field', v_field || '.lease')::text,
                          HINT = 'Use an interval such as "15 minutes", or null for claims without a lease.';
            END IF;
        END IF;
        r.has_max_total := e ? 'max_total_claims';
        r.max_total_claims := NULL;
        IF r.has_max_total AND jsonb_typeof(e -> 'max_total_claims') <> 'null' THEN
            r.max_total_claims := capacity._json_integer(
                e -> 'max_total_claims', v_field || '.max_total_claims', 2147483647,
                'Give the number of claims the code admits over its life, or null for no such cap.', ', or null');
        END IF;
        RETURN NEXT r;
        i := i + 1;
    END LOOP;
END
$$;

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
