-- Sets (or with NULL removes) the units a pool may have in use across all of its codes.
-- Refuses a limit below the units its active claims hold now (CAPACITY_BELOW_USAGE).
CREATE OR REPLACE FUNCTION capacity.set_pool_limit(pool text, max_units integer)
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    v_pool text := capacity._require_pool(set_pool_limit.pool);
    v_used integer;
BEGIN
    IF set_pool_limit.max_units < 0 THEN
        RAISE EXCEPTION 'VALIDATION_ERROR: max_units must be >= 0 or null, got %', set_pool_limit.max_units
            USING ERRCODE = 'CP001', DETAIL = jsonb_build_object('field', 'max_units')::text,
                  HINT = 'Pass a limit of 0 or more, or null for no limit.';
    END IF;
    -- Exclusive against the shared lock every claim and release in this pool takes before
    -- it looks for the pool's stripes: the sum below misses no claim or release in flight.
    PERFORM capacity._lock_pool(v_pool, false);
    IF set_pool_limit.max_units IS NULL THEN
        DELETE FROM capacity.pool_limits AS p WHERE p.pool = v_pool;  -- and its stripes
        RETURN;
    END IF;
    SELECT COALESCE(sum(cl.units), 0)::integer INTO v_used FROM capacity.claims AS cl
     WHERE cl.pool = v_pool AND cl.released_at IS NULL;
    IF v_used > set_pool_limit.max_units THEN
        RAISE EXCEPTION 'CAPACITY_BELOW_USAGE: pool % has % units in use; max_units % would be below that',
                        v_pool, v_used, set_pool_limit.max_units
            USING ERRCODE = 'CP009',
                  DETAIL = jsonb_build_object('pool', v_pool, 'units_in_use', v_used,
                                              'max_units', set_pool_limit.max_units)::text,
                  HINT = 'Raise max_units, or release or revoke claims in the pool first.';
    END IF;
    INSERT INTO capacity.pool_limits AS p (pool, max_units, stripes)
    VALUES (v_pool, set_pool_limit.max_units, capacity._pool_stripe_count(set_pool_limit.max_units))
    ON CONFLICT (pool) DO UPDATE
       SET max_units = EXCLUDED.max_units, stripes = EXCLUDED.stripes, updated_at = now();
    PERFORM capacity._spread_pool(v_pool, v_used);
END
$$;

-- What only pool caps run, below: the pool lock, the stripes, and taking units from them
-- and giving them back (docs/architecture.md, "Pool caps").

-- How many stripes a pool cap of p_max units gets: enough that concurrent claims rarely
-- meet on one, few enough that each holds several units (16 at most, 4 units or more each).
CREATE OR REPLACE FUNCTION capacity._pool_stripe_count(p_max integer)
RETURNS integer
LANGUAGE sql IMMUTABLE
AS $$ SELECT LEAST(GREATEST(p_max / 4, 1), 16) $$;

-- Takes a pool's advisory lock: shared for claims and releases (held while they look for
-- and change its stripes), exclusive for set_pool_limit and reconcile. Inlined SQL: a
-- PERFORM of it costs no query of its own.
CREATE OR REPLACE FUNCTION capacity._lock_pool(p_pool text, p_shared boolean)
RETURNS void
LANGUAGE sql VOLATILE
AS $$
    SELECT CASE WHEN p_shared
                THEN pg_catalog.pg_advisory_xact_lock_shared(capacity._pool_lock_namespace(), pg_catalog.hashtext(p_pool))
                ELSE pg_catalog.pg_advisory_xact_lock(capacity._pool_lock_namespace(), pg_catalog.hashtext(p_pool)) END
$$;

-- Lays a capped pool's stripes out afresh (under the exclusive pool lock): the cap and
-- p_used, the units in use, each split evenly over the stripes (so used <= cap on each).
CREATE OR REPLACE FUNCTION capacity._spread_pool(p_pool text, p_used integer)
RETURNS void
LANGUAGE sql VOLATILE
AS $$
    DELETE FROM capacity.pool_stripes AS s WHERE s.pool = p_pool;
    INSERT INTO capacity.pool_stripes (pool, stripe, cap, used)
    SELECT p.pool, i,
           p.max_units / p.stripes + (i < p.max_units % p.stripes)::integer,
           p_used / p.stripes + (i < p_used % p.stripes)::integer
      FROM capacity.pool_limits AS p, pg_catalog.generate_series(0, p.stripes - 1) AS i
     WHERE p.pool = p_pool;
$$;

-- Counts a new claim's p_units units in its capped pool (p_stripes stripes), or raises
-- POOL_FULL. First, without waiting: the unlocked stripe with room nearest a random
-- start. Then, only if every stripe with room is locked right now: wait for one. Both in
-- a subtransaction, because a stripe locked and then rejected on the re-check (it filled
-- up meanwhile) stays locked: waiting on another while holding it could deadlock. When
-- the pool has room but no one stripe has p_units free, the units are gathered into one.
-- (SQLSTATE CP099 only rolls a subtransaction back here: it is caught, never seen.)
CREATE OR REPLACE FUNCTION capacity._take_pool_units(p_pool text, p_stripes integer, p_units integer)
RETURNS void
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    v_start  integer := pg_catalog.floor(pg_catalog.random() * p_stripes)::integer;
    v_stripe integer;
    v_free   bigint;
BEGIN
    LOOP
        BEGIN
            UPDATE capacity.pool_stripes AS s SET used = s.used + p_units
             WHERE s.pool = p_pool
               AND s.stripe = COALESCE(v_stripe,
                       (SELECT k.stripe FROM capacity.pool_stripes AS k
                         WHERE k.pool = p_pool AND k.used <= k.cap - p_units
                         ORDER BY k.stripe < v_start, k.stripe LIMIT 1
                           FOR NO KEY UPDATE SKIP LOCKED))
               AND s.used <= s.cap - p_units
            RETURNING s.stripe INTO v_stripe;
            IF FOUND THEN
                RETURN;
            END IF;
            RAISE EXCEPTION 'no stripe with room taken' USING ERRCODE = 'CP099';
        EXCEPTION WHEN SQLSTATE 'CP099' THEN
            NULL;  -- rolled back: no stray row lock is kept
        END;
        -- The committed state now: full, or which stripe to wait for (the UPDATE above
        -- waits for its lock, then re-checks it), or room spread over several stripes.
        SELECT sum(k.cap - k.used),
               (array_agg(k.stripe ORDER BY pg_catalog.random()) FILTER (WHERE k.used <= k.cap - p_units))[1]
          INTO v_free, v_stripe
          FROM capacity.pool_stripes AS k WHERE k.pool = p_pool;
        IF COALESCE(v_free, 0) < p_units THEN
            PERFORM capacity._raise_pool_full(p_pool, p_units);
        ELSIF v_stripe IS NULL THEN
            PERFORM capacity._gather_pool_units(p_pool, p_units);
            RETURN;
        END IF;
    END LOOP;
END
$$;

-- Counts p_units units in a capped pool whose free units are spread over several
-- stripes: with every stripe locked (in stripe order), capacity moves from the others
-- into the one with the most room, which then takes the units. Rare and exclusive, like
-- a claim across a slotted code's slots.
CREATE OR REPLACE FUNCTION capacity._gather_pool_units(p_pool text, p_units integer)
RETURNS void
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    v_target integer;
    v_need   integer;
BEGIN
    PERFORM 1 FROM capacity.pool_stripes AS s WHERE s.pool = p_pool ORDER BY s.stripe FOR NO KEY UPDATE;
    SELECT s.stripe, p_units - (s.cap - s.used) INTO v_target, v_need
      FROM capacity.pool_stripes AS s WHERE s.pool = p_pool
     ORDER BY s.cap - s.used DESC, s.stripe LIMIT 1;
    IF (SELECT COALESCE(sum(s.cap - s.used), 0) FROM capacity.pool_stripes AS s WHERE s.pool = p_pool) < p_units THEN
        PERFORM capacity._raise_pool_full(p_pool, p_units);
    END IF;
    IF v_need > 0 THEN
        WITH room AS (
            SELECT s.stripe, s.cap - s.used AS free,
                   sum(s.cap - s.used) OVER (ORDER BY s.stripe) - (s.cap - s.used) AS before
              FROM capacity.pool_stripes AS s
             WHERE s.pool = p_pool AND s.stripe <> v_target AND s.used < s.cap
        )
        UPDATE capacity.pool_stripes AS s SET cap = s.cap - LEAST(r.free, v_need - r.before)
          FROM room AS r
         WHERE s.pool = p_pool AND s.stripe = r.stripe AND r.before < v_need;
        UPDATE capacity.pool_stripes AS s SET cap = s.cap + v_need WHERE s.pool = p_pool AND s.stripe = v_target;
    END IF;
    UPDATE capacity.pool_stripes AS s SET used = s.used + p_units WHERE s.pool = p_pool AND s.stripe = v_target;
END
$$;

-- Gives an ended claim's p_units units back to its capped pool: to the unlocked stripe
-- holding as many nearest a random start, else (all such locked, or the units spread
-- over several stripes) with every stripe locked in stripe order, from the lowest ones.
CREATE OR REPLACE FUNCTION capacity._return_pool_units(p_pool text, p_stripes integer, p_units integer)
RETURNS void
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    v_start integer := pg_catalog.floor(pg_catalog.random() * p_stripes)::integer;
BEGIN
    BEGIN
        UPDATE capacity.pool_stripes AS s SET used = s.used - p_units
         WHERE s.pool = p_pool
           AND s.stripe = (SELECT k.stripe FROM capacity.pool_stripes AS k
                            WHERE k.pool = p_pool AND k.used >= p_units
                            ORDER BY k.stripe < v_start, k.stripe LIMIT 1
                              FOR NO KEY UPDATE SKIP LOCKED)
           AND s.used >= p_units;
        IF FOUND THEN
            RETURN;
        END IF;
        RAISE EXCEPTION 'no stripe holding the units taken' USING ERRCODE = 'CP099';
    EXCEPTION WHEN SQLSTATE 'CP099' THEN
        NULL;  -- rolled back: no stray row lock is kept
    END;
    PERFORM 1 FROM capacity.pool_stripes AS s WHERE s.pool = p_pool ORDER BY s.stripe FOR NO KEY UPDATE;
    -- (Fewer units counted than the claim holds only after a counter was changed by hand:
    -- what there is goes; reconcile() reports the rest.)
    WITH held AS (
        SELECT s.stripe, s.used, sum(s.used) OVER (ORDER BY s.stripe) - s.used AS before
          FROM capacity.pool_stripes AS s WHERE s.pool = p_pool AND s.used > 0
    )
    UPDATE capacity.pool_stripes AS s SET used = s.used - LEAST(h.used, p_units - h.before)
      FROM held AS h
     WHERE s.pool = p_pool AND s.stripe = h.stripe AND h.before < p_units;
END
$$;

-- Raises POOL_FULL: a claim of p_units units would take its pool past max_units.
CREATE OR REPLACE FUNCTION capacity._raise_pool_full(p_pool text, p_units integer)
RETURNS void
LANGUAGE plpgsql STABLE
AS $$
DECLARE
    v_max  integer;
    v_used integer;
BEGIN
    SELECT p.max_units INTO v_max FROM capacity.pool_limits AS p WHERE p.pool = p_pool;
    SELECT COALESCE(sum(s.used), 0)::integer INTO v_used FROM capacity.pool_stripes AS s WHERE s.pool = p_pool;
    RAISE EXCEPTION 'POOL_FULL: pool % has %/% units in use%', p_pool, v_used, v_max,
                    CASE WHEN p_units > 1 THEN pg_catalog.format(', %s units wanted', p_units) ELSE '' END
        USING ERRCODE = 'CP018',
              DETAIL = pg_catalog.jsonb_build_object('pool', p_pool, 'units_in_use', v_used,
                                                     'max_units', v_max, 'units', p_units)::text,
              HINT = 'Retry after a claim in the pool is released or expired, or raise the pool''s limit.';
END
$$;
