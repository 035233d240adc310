-- Private helpers shared by the public functions. Not granted to application roles.
-- They run with the caller's pinned search_path, so every object is schema-qualified.

-- Canonical form of a code: trimmed and upper-cased (lookups use the same form).
CREATE OR REPLACE FUNCTION capacity._normalise_code(raw text)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT pg_catalog.upper(pg_catalog.btrim(raw, E' \t\r\n')) $$;

-- Whether a normalised code is well-formed: 1-64 characters of A-Z, 0-9, "_" and "-".
-- ltrim over the allowed set, not a regular expression: half the CPU, and usage_batch
-- runs it once per code.
CREATE OR REPLACE FUNCTION capacity._is_code(normalised text)
RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT pg_catalog.char_length(normalised) BETWEEN 1 AND 64
       AND pg_catalog.ltrim(normalised, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-') = ''
$$;

-- Shortens user input before it is echoed in an error message.
CREATE OR REPLACE FUNCTION capacity._quote_input(raw text)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT CASE WHEN raw IS NULL THEN 'null'
                WHEN pg_catalog.char_length(raw) > 70
                    THEN pg_catalog.quote_literal(pg_catalog.left(raw, 67) || '...')
                ELSE pg_catalog.quote_literal(raw) END
$$;

-- Validates and normalises a code, raising VALIDATION_ERROR when it is malformed.
CREATE OR REPLACE FUNCTION capacity._require_code(raw text, field text DEFAULT 'code')
RETURNS text
LANGUAGE plpgsql IMMUTABLE
AS $$
DECLARE
    v_code text := capacity._normalise_code(raw);
BEGIN
    IF v_code IS NULL OR NOT capacity._is_code(v_code) THEN
        RAISE EXCEPTION 'VALIDATION_ERROR: % % is not a valid code', field, capacity._quote_input(raw)
            USING ERRCODE = 'CP001',
                  DETAIL = pg_catalog.jsonb_build_object('field', field)::text,
                  HINT = 'A code is 1-64 characters of A-Z, 0-9, "_" and "-" (trimmed, case-insensitive).';
    END IF;
    RETURN v_code;
END
$$;

-- Validates a holder: 1-256 characters, no control characters.
CREATE OR REPLACE FUNCTION capacity._require_holder(raw text)
RETURNS text
LANGUAGE plpgsql IMMUTABLE
AS $$
BEGIN
    IF raw IS NULL OR pg_catalog.char_length(raw) NOT BETWEEN 1 AND 256 OR raw ~ '[[:cntrl:]]'
       OR raw !~ '[^[:space:]]' THEN
        RAISE EXCEPTION 'VALIDATION_ERROR: holder % is not valid', capacity._quote_input(raw)
            USING ERRCODE = 'CP001',
                  DETAIL = pg_catalog.jsonb_build_object('field', 'holder')::text,
                  HINT = 'A holder is 1-256 characters of text, not only spaces, without control characters.';
    END IF;
    RETURN raw;
END
$$;

-- Validates a pool name: 1-64 characters of letters, digits, "_", "-" and ".".
CREATE OR REPLACE FUNCTION capacity._require_pool(raw text)
RETURNS text
LANGUAGE plpgsql IMMUTABLE
AS $$
BEGIN
    IF raw IS NULL OR raw !~ '^[A-Za-z0-9_.-]{1,64}$' THEN
        RAISE EXCEPTION 'VALIDATION_ERROR: pool % is not valid', capacity._quote_input(raw)
            USING ERRCODE = 'CP001',
                  DETAIL = pg_catalog.jsonb_build_object('field', 'pool')::text,
                  HINT = 'A pool is 1-64 characters of letters, digits, "_", "-" and ".".';
    END IF;
    RETURN raw;
END
$$;

-- Validates a lock mode name.
CREATE OR REPLACE FUNCTION capacity._require_lock_mode(raw text)
RETURNS text
LANGUAGE plpgsql IMMUTABLE
AS $$
BEGIN
    IF raw IS NULL OR raw NOT IN ('wait', 'nowait', 'advisory') THEN
        RAISE EXCEPTION 'VALIDATION_ERROR: lock_mode % is not valid', capacity._quote_input(raw)
            USING ERRCODE = 'CP001',
                  DETAIL = pg_catalog.jsonb_build_object('field', 'lock_mode')::text,
                  HINT = 'Use one of wait, nowait, advisory.';
    END IF;
    RETURN raw;
END
$$;

-- Why a code with these fields cannot be claimed right now (an error name), or NULL when
-- it can. Fields rather than a row, for queries that compute the usage (usage_batch).
CREATE OR REPLACE FUNCTION capacity._blocker_of(
    p_is_active boolean, p_expires_at timestamptz, p_usage integer, p_max_uses integer)
RETURNS text
LANGUAGE sql STABLE
AS $$
    SELECT CASE
        WHEN NOT p_is_active THEN 'CODE_INACTIVE'
        WHEN p_expires_at IS NOT NULL AND p_expires_at <= pg_catalog.now() THEN 'CODE_EXPIRED'
        WHEN p_usage >= p_max_uses THEN 'CODE_FULL'
    END
$$;

-- Why a code cannot be claimed right now (an error name), or NULL when it can.
CREATE OR REPLACE FUNCTION capacity._blocker(c capacity.codes)
RETURNS text
LANGUAGE sql STABLE
AS $$ SELECT capacity._blocker_of(c.is_active, c.expires_at, c.usage_count, c.max_uses) $$;

-- Raises the error a claim on this code gets now, if any.
CREATE OR REPLACE FUNCTION capacity._raise_if_blocked(c capacity.codes)
RETURNS void
LANGUAGE plpgsql STABLE
AS $$
DECLARE
    v_blocker text := capacity._blocker(c);
    v_detail  text;
BEGIN
    IF v_blocker IS NULL THEN
        RETURN;  -- the common case: no error detail to build
    END IF;
    v_detail := pg_catalog.jsonb_build_object(
        'code', c.code, 'usage_count', c.usage_count, 'max_uses', c.max_uses,
        'is_active', c.is_active, 'expires_at', c.expires_at)::text;
    CASE v_blocker
    WHEN 'CODE_INACTIVE' THEN
        RAISE EXCEPTION 'CODE_INACTIVE: code % is not active', c.code
            USING ERRCODE = 'CP003', DETAIL = v_detail;
    WHEN 'CODE_EXPIRED' THEN
        RAISE EXCEPTION 'CODE_EXPIRED: code % expired at %', c.code, c.expires_at
            USING ERRCODE = 'CP004', DETAIL = v_detail;
    WHEN 'CODE_FULL' THEN
        RAISE EXCEPTION 'CODE_FULL: code % has %/% uses', c.code, c.usage_count, c.max_uses
            USING ERRCODE = 'CP005', DETAIL = v_detail,
                  HINT = 'Retry after a claim is released or expired.';
    ELSE
        NULL;
    END CASE;
END
$$;

-- Raises CODE_NOT_FOUND for a normalised code.
CREATE OR REPLACE FUNCTION capacity._raise_code_not_found(v_code text)
RETURNS void
LANGUAGE plpgsql IMMUTABLE
AS $$
BEGIN
    RAISE EXCEPTION 'CODE_NOT_FOUND: code % does not exist', v_code
        USING ERRCODE = 'CP002', DETAIL = pg_catalog.jsonb_build_object('code', v_code)::text;
END
$$;

-- The advisory-lock key space of pgcapacity: (namespace, object). Codes use their id;
-- negative objects are singletons (-1 expiry runner, -2 installer, -3 dashboard refresh).
CREATE OR REPLACE FUNCTION capacity._lock_namespace()
RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT 1885823856 $$;  -- 'pgcp'

-- The advisory-lock namespace of holders: (namespace, _holder_lock_key(pool, holder)).
-- Claims and releases hold it shared; set_holder_limit exclusively (migration 0006).
CREATE OR REPLACE FUNCTION capacity._holder_lock_namespace()
RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT 1885823857 $$;  -- 'pgcq'

-- The advisory-lock object of a (pool, holder). A collision only makes a claim wait for
-- an unrelated set_holder_limit. (Pools and holders never contain a line feed.)
CREATE OR REPLACE FUNCTION capacity._holder_lock_key(p_pool text, p_holder text)
RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT pg_catalog.hashtext(p_pool || E'\n' || p_holder) $$;

-- Takes the shared lock on a holder that claims, releases and expiries hold while they
-- look for and change its counter (set_holder_limit takes it exclusively). Inlined SQL:
-- a PERFORM of it costs no query of its own.
CREATE OR REPLACE FUNCTION capacity._lock_holder_shared(p_pool text, p_holder text)
RETURNS void
LANGUAGE sql VOLATILE
AS $$
    SELECT pg_catalog.pg_advisory_xact_lock_shared(capacity._holder_lock_namespace(),
                                                   capacity._holder_lock_key(p_pool, p_holder))
$$;

-- NOWAIT attempts before LOCK_CONTENDED (SET pgcapacity.nowait_attempts; default 6).
CREATE OR REPLACE FUNCTION capacity._nowait_attempts()
RETURNS integer
LANGUAGE sql STABLE
AS $$ SELECT COALESCE(NULLIF(pg_catalog.current_setting('pgcapacity.nowait_attempts', true), '')::integer, 6) $$;

-- Sleeps after failed NOWAIT attempt n: exponential backoff with full jitter,
-- U(0, base * 2^(n-1)) ms (SET pgcapacity.nowait_backoff_ms; default 2).
CREATE OR REPLACE FUNCTION capacity._nowait_backoff(p_attempt integer)
RETURNS void
LANGUAGE sql VOLATILE
AS $$
    SELECT pg_catalog.pg_sleep(pg_catalog.random()
        * COALESCE(NULLIF(pg_catalog.current_setting('pgcapacity.nowait_backoff_ms', true), '')::double precision, 2)
        * (2 ^ (p_attempt - 1)) / 1000.0)
$$;

-- Raises CAPACITY_BELOW_USAGE: max_uses would go below a code's current usage.
CREATE OR REPLACE FUNCTION capacity._raise_capacity_below_usage(p_code text, p_usage integer, p_max integer)
RETURNS void
LANGUAGE plpgsql IMMUTABLE
AS $$
BEGIN
    RAISE EXCEPTION 'CAPACITY_BELOW_USAGE: code % has % uses; max_uses % would be below that',
                    p_code, p_usage, p_max
        USING ERRCODE = 'CP009',
              DETAIL = pg_catalog.jsonb_build_object('code', p_code, 'usage_count', p_usage,
                                                     'max_uses', p_max)::text,
              HINT = 'Raise max_uses, or release or revoke claims first.';
END
$$;

-- Locks one code row according to the lock mode and returns its current version.
-- Every mode ends holding the row lock, so correctness never depends on the mode;
-- the mode only decides how contenders queue (row lock, bounded NOWAIT retries, or
-- a transaction-scoped advisory lock on the code).
CREATE OR REPLACE FUNCTION capacity._lock_code(p_code_id bigint, p_mode text)
RETURNS capacity.codes
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    c          capacity.codes;
    v_attempts integer;
BEGIN
    IF p_mode = 'advisory' THEN
        PERFORM pg_catalog.pg_advisory_xact_lock(capacity._lock_namespace(), (p_code_id % 2147483647)::integer);
    END IF;
    IF p_mode <> 'nowait' THEN
        SELECT * INTO STRICT c FROM capacity.codes WHERE code_id = p_code_id FOR NO KEY UPDATE;
        RETURN c;
    END IF;
    v_attempts := capacity._nowait_attempts();
    FOR attempt IN 1..GREATEST(v_attempts, 1) LOOP
        BEGIN
            SELECT * INTO STRICT c FROM capacity.codes WHERE code_id = p_code_id FOR NO KEY UPDATE NOWAIT;
            RETURN c;
        EXCEPTION WHEN lock_not_available THEN
            IF attempt < v_attempts THEN
                PERFORM capacity._nowait_backoff(attempt);
            END IF;
        END;
    END LOOP;
    SELECT * INTO c FROM capacity.codes WHERE code_id = p_code_id;
    RAISE EXCEPTION 'LOCK_CONTENDED: code % stayed locked after % NOWAIT attempts', c.code, v_attempts
        USING ERRCODE = 'CP008',
              DETAIL = pg_catalog.jsonb_build_object('code', c.code, 'attempts', v_attempts)::text,
              HINT = 'Retry later, or use lock_mode => ''advisory'' to queue instead of failing.';
END
$$;

-- Appends one row to the audit log. PL/pgSQL, not SQL: it keeps its plan per session,
-- where a SQL function re-plans its INSERT on every call (a third of a claim's cost).
CREATE OR REPLACE FUNCTION capacity._log(
    p_kind capacity.event_kind, c capacity.codes, p_holder text, p_claim_id bigint)
RETURNS void
LANGUAGE plpgsql VOLATILE
AS $$
BEGIN
    INSERT INTO capacity.events (kind, code_id, code, pool, holder, claim_id, usage_after)
    VALUES (p_kind, c.code_id, c.code, c.pool, p_holder, p_claim_id, c.usage_count);
END
$$;

-- The public status row of a code (found = true).
CREATE OR REPLACE FUNCTION capacity._status(c capacity.codes)
RETURNS capacity.code_status
LANGUAGE sql STABLE
AS $$
    SELECT ROW(c.code, true, c.pool, c.is_active, c.expires_at, c.usage_count, c.max_uses,
               c.max_uses - c.usage_count, capacity._blocker(c) IS NULL,
               capacity._blocker(c))::capacity.code_status
$$;

-- Gives back one unit per ended claim to each counter of a limited holder, in lock order.
-- Returns how many distinct holders had claims ended.
CREATE OR REPLACE FUNCTION capacity._release_holders(p_pools text[], p_holders text[])
RETURNS integer
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    v_count integer;
BEGIN
    -- Shared holder locks first (see _finish_claim): a set_holder_limit that counted
    -- these claims as active has committed, or one that starts now will not count them.
    SELECT count(capacity._lock_holder_shared(k.pool, k.holder))::integer INTO v_count
      FROM (SELECT DISTINCT u.pool, u.holder FROM unnest(p_pools, p_holders) AS u(pool, holder)) AS k;
    -- Lock in the documented order (pool, holder) so multi-holder updates cannot deadlock.
    PERFORM 1
       FROM capacity.holders h
       JOIN (SELECT DISTINCT u.pool, u.holder FROM unnest(p_pools, p_holders) AS u(pool, holder)) k
         ON h.pool = k.pool AND h.holder = k.holder
      ORDER BY h.pool, h.holder
        FOR NO KEY UPDATE OF h;
    UPDATE capacity.holders h
       SET active_claims = h.active_claims - g.n
      FROM (SELECT u.pool, u.holder, count(*)::integer AS n
              FROM unnest(p_pools, p_holders) AS u(pool, holder)
             GROUP BY u.pool, u.holder) g
     WHERE h.pool = g.pool AND h.holder = g.holder;
    RETURN v_count;
END
$$;

-- claim()'s result row for a claim on a code (c: the code with its whole usage).
CREATE OR REPLACE FUNCTION capacity._claim_result(c capacity.codes, cl capacity.claims, p_already_held boolean)
RETURNS capacity.claim_result
LANGUAGE sql IMMUTABLE
AS $$
    SELECT ROW(cl.claim_id, cl.token, c.code, cl.holder, c.usage_count, c.max_uses,
               c.max_uses - c.usage_count, p_already_held, cl.claimed_at)::capacity.claim_result
$$;

-- The end of every successful new claim: counts it for its holder if the holder has a
-- limit (the conditional update is the limit check, under the holder row's lock, the
-- last lock a claim takes), logs and announces it, and returns claim()'s result.
-- c: the code with its whole usage. Plain statements, not helper calls: this runs on
-- every claim (PERFORM of a PL/pgSQL function costs a query of its own).
CREATE OR REPLACE FUNCTION capacity._finish_claim(c capacity.codes, cl capacity.claims)
RETURNS capacity.claim_result
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    v_limit integer;
BEGIN
    -- Shared with every claim and release of this holder, exclusive in set_holder_limit:
    -- the look below sees a counter row created meanwhile, and a counter created after
    -- this commits counts this claim.
    PERFORM capacity._lock_holder_shared(cl.pool, cl.holder);
    SELECT k.max_claims INTO v_limit FROM capacity.holders AS k
     WHERE k.pool = cl.pool AND k.holder = cl.holder;
    IF FOUND THEN
        UPDATE capacity.holders AS k SET active_claims = k.active_claims + 1
         WHERE k.pool = cl.pool AND k.holder = cl.holder AND k.active_claims < k.max_claims;
        IF NOT FOUND THEN
            PERFORM capacity._raise_holder_limit(cl.pool, cl.holder, v_limit);
        END IF;
    END IF;
    INSERT INTO capacity.events (kind, code_id, code, pool, holder, claim_id, usage_after)
    VALUES ('claimed', c.code_id, c.code, c.pool, cl.holder, cl.claim_id, c.usage_count);
    INSERT INTO capacity.pending_changes (codes, pool, claims) VALUES (ARRAY[c.code], c.pool, 1);
    RETURN capacity._claim_result(c, cl, false);
END
$$;

-- Raises HOLDER_LIMIT_EXCEEDED for a holder in a pool.
CREATE OR REPLACE FUNCTION capacity._raise_holder_limit(p_pool text, p_holder text, p_limit integer)
RETURNS void
LANGUAGE plpgsql IMMUTABLE
AS $$
BEGIN
    RAISE EXCEPTION 'HOLDER_LIMIT_EXCEEDED: holder % already holds %/% claims in pool %',
                    capacity._quote_input(p_holder), p_limit, p_limit, p_pool
        USING ERRCODE = 'CP006',
              DETAIL = pg_catalog.jsonb_build_object('pool', p_pool, 'holder', p_holder, 'max_claims', p_limit)::text,
              HINT = 'Release one of the holder''s claims first.';
END
$$;

-- Ends one claim. Takes its unit back first, which locks what holds it (its slot row, or
-- the code row when the claim is counted there), then ends the claim, then counts it off
-- its holder. Returns released = false when a concurrent call ended it first (and puts
-- back the unit it took). A conditional update rather than locking the row and then
-- updating it: one statement and one WAL record less per release.
CREATE OR REPLACE FUNCTION capacity._end_claim(cl capacity.claims, p_reason capacity.end_reason)
RETURNS capacity.release_result
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    c       capacity.codes;
    ended   capacity.claims;
    v_slot  bigint;
    v_taken boolean := false;  -- a unit was taken from the code row
BEGIN
    IF cl.slot_id IS NOT NULL THEN
        -- No row when the code was re-sliced or made plain: the claim is then counted in
        -- the code row. (used = 0: nothing to take, the claim has ended.)
        UPDATE capacity.code_slots AS s SET used = s.used - 1
         WHERE s.slot_id = cl.slot_id AND s.used > 0
        RETURNING s.slot_id INTO v_slot;
    END IF;
    IF v_slot IS NULL THEN
        UPDATE capacity.codes AS k SET usage_count = k.usage_count - 1
         WHERE k.code_id = cl.code_id AND k.usage_count > 0
        RETURNING * INTO c;
        v_taken := FOUND;
        IF NOT v_taken THEN  -- nothing counted in the row: lock it to look at the claim
            SELECT * INTO STRICT c FROM capacity.codes WHERE code_id = cl.code_id FOR NO KEY UPDATE;
        END IF;
    END IF;
    UPDATE capacity.claims
       SET released_at = pg_catalog.now(), end_reason = p_reason
     WHERE claim_id = cl.claim_id AND released_at IS NULL
    RETURNING * INTO ended;
    IF NOT FOUND THEN
        -- A concurrent call ended it first: put back what was taken above.
        IF v_slot IS NOT NULL THEN
            UPDATE capacity.code_slots AS s SET used = s.used + 1 WHERE s.slot_id = v_slot;
            SELECT * INTO STRICT c FROM capacity.codes WHERE code_id = cl.code_id;
        ELSIF v_taken THEN
            UPDATE capacity.codes AS k SET usage_count = k.usage_count + 1
             WHERE k.code_id = cl.code_id
            RETURNING * INTO c;
        END IF;
        c := capacity._with_total_usage(c);
        RETURN ROW(cl.claim_id, c.code, cl.holder, false, c.usage_count,
                   c.max_uses - c.usage_count)::capacity.release_result;
    END IF;
    -- (Active although nothing was counted in its row, v_taken false, only after a counter
    -- was changed by hand: the claim ends without going below 0; reconcile() reports it.)
    IF v_slot IS NOT NULL THEN
        SELECT * INTO STRICT c FROM capacity.codes WHERE code_id = cl.code_id;
    ELSIF v_taken AND c.slots > 0 THEN
        PERFORM capacity._return_base_units(c.code_id, 1);
    END IF;
    -- Only a limited holder has a counter (the shared lock: see _finish_claim).
    PERFORM capacity._lock_holder_shared(ended.pool, ended.holder);
    UPDATE capacity.holders SET active_claims = active_claims - 1
     WHERE pool = ended.pool AND holder = ended.holder;
    c := capacity._with_total_usage(c);
    -- Plain statements, not _log(): this runs on every release.
    INSERT INTO capacity.events (kind, code_id, code, pool, holder, claim_id, usage_after)
    VALUES (p_reason::text::capacity.event_kind, c.code_id, c.code, c.pool, ended.holder,
            ended.claim_id, c.usage_count);
    INSERT INTO capacity.pending_changes (codes) VALUES (ARRAY[c.code]);
    RETURN ROW(cl.claim_id, c.code, cl.holder, true, c.usage_count,
               c.max_uses - c.usage_count)::capacity.release_result;
END
$$;
