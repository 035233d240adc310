-- Sets (or with NULL removes) how many active claims a holder may have in a pool.
-- Refuses a limit below the holder's current active claims (CAPACITY_BELOW_USAGE).
CREATE OR REPLACE FUNCTION capacity.set_holder_limit(pool text, holder text, max_claims integer)
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    v_pool   text := capacity._require_pool(set_holder_limit.pool);
    v_holder text := capacity._require_holder(set_holder_limit.holder);
    v_active integer;
BEGIN
    IF max_claims < 0 THEN
        RAISE EXCEPTION 'VALIDATION_ERROR: max_claims must be >= 0 or null, got %', set_holder_limit.max_claims
            USING ERRCODE = 'CP001', DETAIL = jsonb_build_object('field', 'max_claims')::text,
                  HINT = 'Pass a limit of 0 or more, or null for no limit.';
    END IF;
    -- Exclusive against the shared lock every claim and release of this holder takes
    -- before it looks for the counter: the count below misses no claim in flight.
    PERFORM pg_advisory_xact_lock(capacity._holder_lock_namespace(), capacity._holder_lock_key(v_pool, v_holder));
    IF set_holder_limit.max_claims IS NULL THEN
        DELETE FROM capacity.holders AS h WHERE h.pool = v_pool AND h.holder = v_holder;
        RETURN;  -- unlimited holders have no counter row
    END IF;
    SELECT count(*)::integer INTO v_active FROM capacity.claims AS cl
     WHERE cl.holder = v_holder AND cl.pool = v_pool AND cl.released_at IS NULL;
    IF v_active > set_holder_limit.max_claims THEN
        RAISE EXCEPTION 'CAPACITY_BELOW_USAGE: holder % holds % claims in pool %; limit % would be below that',
                        capacity._quote_input(v_holder), v_active, v_pool, set_holder_limit.max_claims
            USING ERRCODE = 'CP009',
                  DETAIL = jsonb_build_object('pool', v_pool, 'holder', v_holder, 'active_claims', v_active,
                                              'max_claims', set_holder_limit.max_claims)::text,
                  HINT = 'Release some of the holder''s claims first.';
    END IF;
    INSERT INTO capacity.holders AS h (pool, holder, max_claims, active_claims)
    VALUES (v_pool, v_holder, set_holder_limit.max_claims, v_active)
    ON CONFLICT (pool, holder) DO UPDATE
       SET max_claims = EXCLUDED.max_claims, active_claims = EXCLUDED.active_claims, updated_at = now();
END
$$;
