-- The upsert_codes() document's parser, shared by a server's upsert_codes and by a sharded
-- cluster's proxy, which validates the whole document before any shard is written. It
-- reads no table, so the proxy runs the same rules on its own.

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
