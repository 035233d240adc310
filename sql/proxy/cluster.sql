-- The proxy's own state and routing (schema capacity_cluster; the capacity schema of a
-- proxy holds only the public functions and their types, and is rebuilt by every
-- install). The shards are PL/Proxy's cluster 'pgcapacity_shards', a foreign server
-- whose options p0, p1, ... are the shards' connection strings, in shard order; cluster
-- 'pgcapacity_proxy' is the proxy itself (placement is written through it, so that it is
-- committed before any shard is written).

-- Where each pool lives: all codes of a pool on one shard, so that holder limits and
-- pool caps stay exact without transactions spanning shards. Decided with its first code.
CREATE TABLE IF NOT EXISTS capacity_cluster.pool_shards (
    pool      text PRIMARY KEY,
    shard     integer NOT NULL CHECK (shard >= 0),
    placed_at timestamptz NOT NULL DEFAULT now()
);

-- Where each code lives (its pool's shard).
CREATE TABLE IF NOT EXISTS capacity_cluster.code_shards (
    code  text PRIMARY KEY,
    shard integer NOT NULL CHECK (shard >= 0)
);

-- The roles given application access on the proxy (grant_app_access): every install,
-- which rebuilds the capacity schema, grants them the new functions again.
CREATE TABLE IF NOT EXISTS capacity_cluster.app_roles (
    role_name  name PRIMARY KEY,
    granted_at timestamptz NOT NULL DEFAULT now()
);

-- How many shards the cluster has (a power of two: PL/Proxy's rule).
CREATE OR REPLACE FUNCTION capacity_cluster.shard_count()
RETURNS integer
LANGUAGE sql STABLE
AS $$
    SELECT count(*)::integer
      FROM pg_catalog.pg_foreign_server AS s, unnest(s.srvoptions) AS o
     WHERE s.srvname = 'pgcapacity_shards' AND o ~ '^p[0-9]+='
$$;

-- The shard a name hashes to (stable: hashtext is the hash PL/Proxy itself documents).
CREATE OR REPLACE FUNCTION capacity_cluster.hash_shard(name text)
RETURNS integer
LANGUAGE sql STABLE
AS $$
    SELECT hashtext(coalesce(name, '')) & (capacity_cluster.shard_count() - 1)
$$;

-- The shard of a code. A code the proxy does not know (or an invalid one) goes to the
-- shard its name hashes to, which answers CODE_NOT_FOUND (or the validation error).
CREATE OR REPLACE FUNCTION capacity_cluster.shard_of_code(code text)
RETURNS integer
LANGUAGE sql STABLE
AS $$
    SELECT coalesce(
        (SELECT p.shard FROM capacity_cluster.code_shards AS p
          WHERE p.code = capacity._normalise_code($1)),
        capacity_cluster.hash_shard(coalesce(capacity._normalise_code($1), $1)))
$$;

-- Records placement (on the proxy, called through cluster 'pgcapacity_proxy': committed
-- on its own). What is recorded already stays. The owner's: an application role may add
-- placement through it, never change or remove any.
CREATE OR REPLACE FUNCTION capacity_cluster.record_placement(
    pools text[], pool_shards integer[], codes text[], code_shards integer[])
RETURNS void
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    INSERT INTO capacity_cluster.pool_shards (pool, shard)
        SELECT * FROM unnest(pools, pool_shards) ON CONFLICT (pool) DO NOTHING;
    INSERT INTO capacity_cluster.code_shards (code, shard)
        SELECT * FROM unnest(codes, code_shards) ON CONFLICT (code) DO NOTHING;
$$;

-- The shard that numbered a claim: its id's top bits (each shard numbers its claims
-- from shard << 48, set by `pgcapacity cluster install`).
CREATE OR REPLACE FUNCTION capacity_cluster.shard_of_claim(claim_id bigint)
RETURNS integer
LANGUAGE sql IMMUTABLE
AS $$
    SELECT (greatest(coalesce(claim_id, 0), 0) >> 48)::integer
$$;

-- Raises a shard's error as the shard raised it: PL/Proxy prefixes the message with the
-- function and shard ("capacity.claim(2): [shard0] REMOTE ERROR: ") and the detail and
-- hint with "Remote detail: " and "Remote hint: "; callers match on the message's name
-- prefix, so the proxy gives back the original text (same SQLSTATE).
CREATE OR REPLACE FUNCTION capacity_cluster.reraise(
    p_state text, p_message text, p_detail text, p_hint text)
RETURNS void
LANGUAGE plpgsql
AS $$
DECLARE
    v_message text := regexp_replace(p_message, '^.*? REMOTE ERROR: ', '');
    v_detail  text := nullif(regexp_replace(coalesce(p_detail, ''), '^Remote detail: ', ''), '');
    v_hint    text := nullif(regexp_replace(coalesce(p_hint, ''), '^Remote hint: ', ''), '');
BEGIN
    -- RAISE refuses a null option: one statement per combination.
    IF v_detail IS NOT NULL AND v_hint IS NOT NULL THEN
        RAISE EXCEPTION USING ERRCODE = p_state, MESSAGE = v_message, DETAIL = v_detail, HINT = v_hint;
    ELSIF v_detail IS NOT NULL THEN
        RAISE EXCEPTION USING ERRCODE = p_state, MESSAGE = v_message, DETAIL = v_detail;
    ELSIF v_hint IS NOT NULL THEN
        RAISE EXCEPTION USING ERRCODE = p_state, MESSAGE = v_message, HINT = v_hint;
    END IF;
    RAISE EXCEPTION USING ERRCODE = p_state, MESSAGE = v_message;
END
$$;

-- The shards a listing or a series reads: the code's shard for one code, the pool's for
-- a placed pool, else every shard (each answers for what it holds, or raises the same
-- validation error).
CREATE OR REPLACE FUNCTION capacity_cluster.shards_for(code text, pool text)
RETURNS SETOF integer
LANGUAGE sql STABLE
AS $$
    WITH placed AS (
        SELECT p.shard FROM capacity_cluster.pool_shards AS p WHERE p.pool = $2 AND $1 IS NULL
    )
    SELECT capacity_cluster.shard_of_code($1) WHERE $1 IS NOT NULL
    UNION ALL
    SELECT shard FROM placed
    UNION ALL
    SELECT s FROM generate_series(0, capacity_cluster.shard_count() - 1) AS s
     WHERE $1 IS NULL AND NOT EXISTS (SELECT FROM placed)
$$;

-- Refuses a call that only a shard can answer, naming what to do instead.
CREATE OR REPLACE FUNCTION capacity_cluster.raise_per_shard(function_name text)
RETURNS void
LANGUAGE plpgsql STABLE
AS $$
BEGIN
    RAISE EXCEPTION 'NOT_FOUND: capacity.%() is not offered by the proxy of a sharded cluster', function_name
        USING ERRCODE = 'CP012', DETAIL = jsonb_build_object('function', function_name)::text,
              HINT = 'The event log is kept per shard: call it on each shard (`pgcapacity cluster status` lists them).';
END
$$;
