-- The invariants every counter must keep (docs/contract.md, guarantee 1), checked from the
-- claims themselves: reconcile() reports its drift from here, the test suite and the
-- benchmark assert that it returns no row. Private: not granted to application roles.

-- One row per broken invariant: which rule, what breaks it, what was expected and what
-- was found. No rows: every counter agrees with the active claims and the limits.
--   usage_equals_active_claims  a code's whole usage against its active claims' units
--   usage_within_capacity       0 <= a code's whole usage <= max_uses
--   slots_cover_capacity        a slotted code's usage_count + sum(slot cap) = max_uses
--   slot_counts_its_claims      a slot's used against the units of the active claims it holds
--   holder_counts_its_claims    a limited holder's counter against its active claims
--   holder_within_limit         a limited holder's active claims <= max_claims
--   pool_counts_its_claims      a capped pool's stripes against its active claims' units
--   stripes_cover_pool_limit    a capped pool's stripes' caps add up to max_units
CREATE OR REPLACE FUNCTION capacity._invariant_violations()
RETURNS TABLE (rule text, subject text, expected bigint, found bigint)
LANGUAGE sql STABLE
AS $$
    WITH code_usage AS (
        SELECT c.code_id, c.code, c.max_uses, c.usage_count, c.slots,
               c.usage_count + CASE WHEN c.slots > 0 THEN
                   (SELECT COALESCE(sum(s.used), 0) FROM capacity.code_slots AS s
                     WHERE s.code_id = c.code_id) ELSE 0 END AS usage,
               (SELECT COALESCE(sum(cl.units), 0) FROM capacity.claims AS cl
                 WHERE cl.code_id = c.code_id AND cl.released_at IS NULL) AS active
          FROM capacity.codes AS c
    )
    SELECT 'usage_equals_active_claims', u.code, u.active, u.usage
      FROM code_usage AS u WHERE u.usage <> u.active
    UNION ALL
    SELECT 'usage_within_capacity', u.code, u.max_uses, u.usage
      FROM code_usage AS u WHERE u.usage < 0 OR u.usage > u.max_uses
    UNION ALL
    SELECT 'slots_cover_capacity', u.code, u.max_uses,
           u.usage_count + (SELECT sum(s.cap) FROM capacity.code_slots AS s WHERE s.code_id = u.code_id)
      FROM code_usage AS u
     WHERE u.slots > 0
       AND u.usage_count + (SELECT COALESCE(sum(s.cap), 0) FROM capacity.code_slots AS s
                             WHERE s.code_id = u.code_id) <> u.max_uses
    UNION ALL
    SELECT 'slot_counts_its_claims', u.code || ' slot ' || s.slot, COALESCE(sum(cl.units), 0), s.used
      FROM capacity.code_slots AS s
      JOIN code_usage AS u ON u.code_id = s.code_id
      LEFT JOIN capacity.claims AS cl ON cl.slot_id = s.slot_id AND cl.released_at IS NULL
     GROUP BY u.code, s.slot, s.used
    HAVING s.used <> COALESCE(sum(cl.units), 0)
    UNION ALL
    SELECT 'holder_counts_its_claims', h.pool || '/' || h.holder, count(cl.claim_id), h.active_claims
      FROM capacity.holders AS h
      LEFT JOIN capacity.claims AS cl
        ON cl.pool = h.pool AND cl.holder = h.holder AND cl.released_at IS NULL
     GROUP BY h.pool, h.holder, h.active_claims
    HAVING h.active_claims <> count(cl.claim_id)
    UNION ALL
    SELECT 'holder_within_limit', h.pool || '/' || h.holder, h.max_claims, h.active_claims
      FROM capacity.holders AS h WHERE h.active_claims > h.max_claims
    UNION ALL
    SELECT 'pool_counts_its_claims', p.pool, a.units, s.used
      FROM capacity.pool_limits AS p
     CROSS JOIN LATERAL (SELECT COALESCE(sum(k.used), 0) AS used
                           FROM capacity.pool_stripes AS k WHERE k.pool = p.pool) AS s
     CROSS JOIN LATERAL (SELECT COALESCE(sum(cl.units), 0) AS units FROM capacity.claims AS cl
                          WHERE cl.pool = p.pool AND cl.released_at IS NULL) AS a
     WHERE s.used <> a.units
    UNION ALL
    SELECT 'stripes_cover_pool_limit', p.pool, p.max_units, sum(k.cap)
      FROM capacity.pool_limits AS p LEFT JOIN capacity.pool_stripes AS k ON k.pool = p.pool
     GROUP BY p.pool, p.max_units
    HAVING COALESCE(sum(k.cap), 0) <> p.max_units
$$;
