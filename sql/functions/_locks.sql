-- pgcapacity's advisory-lock key spaces, and the shared holder lock
-- (docs/architecture.md, "Lock order").
-- Not granted to application roles; they run with the caller's pinned search_path, so
-- every object is schema-qualified.

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

-- The advisory-lock namespace of pools: (namespace, hashtext(pool)). Claims and releases
-- hold it shared; set_pool_limit and reconcile exclusively (migration 0017).
CREATE OR REPLACE FUNCTION capacity._pool_lock_namespace()
RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT 1885823858 $$;  -- 'pgcr'

-- The advisory-lock namespace of the queues of claim_wait(): (namespace, code_id), taken
-- by each waiter in turn, in the order they came.
CREATE OR REPLACE FUNCTION capacity._wait_lock_namespace()
RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT 1885823859 $$;  -- 'pgcs'

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
