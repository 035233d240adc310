-- Status of one code without taking any lock; reason is the error a claim would get now.
CREATE OR REPLACE FUNCTION capacity.check(code text)
RETURNS capacity.code_status
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_code text := capacity._require_code($1);
    c      capacity.codes;
BEGIN
    SELECT * INTO c FROM capacity.codes AS k WHERE k.code = v_code;
    IF NOT FOUND THEN
        RETURN ROW(v_code, false, NULL, NULL, NULL, NULL, NULL, NULL, false, 'CODE_NOT_FOUND')::capacity.code_status;
    END IF;
    -- Two steps: _status(c) is inlined only when its argument is a plain variable; given a
    -- function call it would run as a SQL function, parsed and planned in every transaction.
    c := capacity._with_total_usage(c);
    RETURN capacity._status(c);
END
$$;

-- Status of many codes in one query: one row per input code, in input order.
CREATE OR REPLACE FUNCTION capacity.usage_batch(codes text[])
RETURNS SETOF capacity.code_status
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_bad record;
BEGIN
    IF $1 IS NULL THEN
        RAISE EXCEPTION 'VALIDATION_ERROR: codes must be an array, not null'
            USING ERRCODE = 'CP001', DETAIL = jsonb_build_object('field', 'codes')::text;
    END IF;
    SELECT u.ord, u.raw INTO v_bad
      FROM unnest($1) WITH ORDINALITY AS u(raw, ord)
     WHERE capacity._normalise_code(u.raw) IS NULL
        OR capacity._normalise_code(u.raw) !~ '^[A-Z0-9_-]{1,64}$'
     ORDER BY u.ord
     LIMIT 1;
    IF FOUND THEN
        PERFORM capacity._require_code(v_bad.raw, format('codes[%s]', v_bad.ord));
    END IF;
    RETURN QUERY
        SELECT capacity._normalise_code(u.raw), c.code_id IS NOT NULL, c.pool, c.is_active,
               c.expires_at, c.usage_count, c.max_uses, c.max_uses - c.usage_count,
               c.code_id IS NOT NULL AND capacity._blocker(c) IS NULL,
               CASE WHEN c.code_id IS NULL THEN 'CODE_NOT_FOUND' ELSE capacity._blocker(c) END
          FROM unnest($1) WITH ORDINALITY AS u(raw, ord)
          LEFT JOIN LATERAL (
                SELECT t.* FROM capacity.codes AS k, capacity._with_total_usage(k) AS t
                 WHERE k.code = capacity._normalise_code(u.raw)) AS c ON true
         ORDER BY u.ord;
END
$$;
