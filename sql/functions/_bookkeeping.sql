-- What functions that end or repair many claims at once share: the audit event and the
-- holder counters.
-- Not granted to application roles; they run with the caller's pinned search_path, so
-- every object is schema-qualified.

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
