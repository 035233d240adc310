-- Claims like claim(), but a claim the code (or its pool) has no room for now waits up to
-- `wait` for it instead of failing at once; then CODE_FULL (or POOL_FULL) as claim()
-- would. Waiters on a code are served first come, first served: each queues for the
-- code's wait lock, which PostgreSQL grants in the order it was asked for, and only the
-- head of the queue looks for room (every 1 ms at first, backing off to every 50 ms), so
-- a queue of any length costs one poller and no unit is held while nobody takes it. The
-- head keeps its place until its transaction ends: call it alone, or last, in a short
-- transaction. A waiter that gives up (timeout, cancel) leaves the queue, and so does one
-- whose client went away when client_connection_check_interval is set (PostgreSQL arms
-- that check when a statement starts, so it is a role's or connection's setting).
-- Claims made with claim() do not queue: they compete with the head.
CREATE OR REPLACE FUNCTION capacity.claim_wait(
    code text, holder text, wait interval, lock_mode text DEFAULT 'advisory', units integer DEFAULT 1,
    lease interval DEFAULT NULL)
RETURNS capacity.claim_result
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    v_code     text := capacity._require_code(claim_wait.code);
    v_code_id  bigint;
    v_deadline timestamptz;
    v_timeout  text := current_setting('lock_timeout');
    v_pause    double precision := 0.001;
    result     capacity.claim_result;
BEGIN
    IF claim_wait.wait IS NULL OR claim_wait.wait < interval '0' OR claim_wait.wait > interval '1 hour' THEN
        RAISE EXCEPTION 'VALIDATION_ERROR: wait must be an interval from 0 to 1 hour, got %',
                        COALESCE(claim_wait.wait::text, 'null')
            USING ERRCODE = 'CP001', DETAIL = jsonb_build_object('field', 'wait')::text,
                  HINT = 'Pass how long to wait for a unit, such as ''5 seconds''; 0 does not wait.';
    END IF;
    v_deadline := clock_timestamp() + claim_wait.wait;
    SELECT k.code_id INTO v_code_id FROM capacity.codes AS k WHERE k.code = v_code;
    IF NOT FOUND THEN
        PERFORM capacity._raise_code_not_found(v_code);
    END IF;
    -- Join the queue, for no longer than the wait (a lock_timeout of 0 would mean for ever).
    PERFORM set_config('lock_timeout', GREATEST(ceil(extract(epoch FROM claim_wait.wait) * 1000), 1)::bigint || 'ms', true);
    BEGIN
        PERFORM pg_advisory_xact_lock(capacity._wait_lock_namespace(), (v_code_id % 2147483647)::integer);
    EXCEPTION WHEN lock_not_available THEN
        -- The wait ran out in the queue. No last try: a unit free now is the head's.
        RAISE EXCEPTION 'CODE_FULL: code % had no unit for this waiter within %, with earlier waiters queued',
                        v_code, claim_wait.wait
            USING ERRCODE = 'CP005',
                  DETAIL = jsonb_build_object('code', v_code, 'units', claim_wait.units, 'queued', true,
                                              'wait_ms', ceil(extract(epoch FROM claim_wait.wait) * 1000))::text,
                  HINT = 'Wait longer, or retry later: waiters on a code are served in the order they came.';
    END;
    PERFORM set_config('lock_timeout', v_timeout, true);
    LOOP  -- ends by RETURN or by raising
        BEGIN
            result := capacity.claim(v_code, claim_wait.holder, claim_wait.lock_mode, claim_wait.units,
                                     claim_wait.lease);
            RETURN result;
        EXCEPTION WHEN SQLSTATE 'CP005' OR SQLSTATE 'CP018' THEN  -- CODE_FULL, POOL_FULL
            IF clock_timestamp() >= v_deadline THEN
                RAISE;  -- the refusal itself, with its details
            END IF;
        END;
        PERFORM pg_sleep(LEAST(v_pause, extract(epoch FROM v_deadline - clock_timestamp())));
        v_pause := LEAST(v_pause * 2, 0.05);
    END LOOP;
    RETURN NULL;  -- never reached (plpgsql_check cannot tell)
END
$$;
