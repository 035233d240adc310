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
        RETURN ROW(v_code, false, NULL, NULL, NULL, NULL, NULL, NULL, false, 'CODE_NOT_FOUND',
                   NULL, NULL, NULL)::capacity.code_status;
    END IF;
    -- Two steps: _status(c) is inlined only when its argument is a plain variable; given a
    -- function call it would run as a SQL function, parsed and planned in every transaction.
    c := capacity._with_total_usage(c);
    RETURN capacity._status(c);
END
$$;

-- The public status row of a code (found = true).
CREATE OR REPLACE FUNCTION capacity._status(c capacity.codes)
RETURNS capacity.code_status
LANGUAGE sql STABLE
AS $$
    SELECT ROW(c.code, true, c.pool, c.is_active, c.expires_at, c.usage_count, c.max_uses,
               c.max_uses - c.usage_count, capacity._blocker(c) IS NULL,
               capacity._blocker(c), c.max_total_claims, c.total_claims,
               c.max_total_claims - c.total_claims)::capacity.code_status
$$;
