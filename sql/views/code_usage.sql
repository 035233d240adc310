-- One row per code: usage, remaining units, utilisation and an independent count of its
-- active claims (whose units add up to usage_count by the schema's invariant). usage_count
-- includes the units held in a slotted code's slot rows.
CREATE OR REPLACE VIEW capacity.code_usage AS
SELECT c.code,
       c.pool,
       c.is_active,
       c.expires_at,
       c.usage_count,
       c.max_uses,
       c.max_uses - c.usage_count AS remaining,
       CASE WHEN c.max_uses = 0 THEN 1.0
            ELSE round(c.usage_count::numeric / c.max_uses, 4) END AS utilisation,
       c.usage_count >= 0.9 * c.max_uses AS near_capacity,
       c.usage_count >= c.max_uses AS has_reached_limit,
       (SELECT count(*)::integer FROM capacity.claims AS cl
         WHERE cl.code_id = c.code_id AND cl.released_at IS NULL) AS active_claims,
       c.metadata,
       c.created_at,
       c.updated_at
  FROM (SELECT k.code_id, k.code, k.pool, k.is_active, k.expires_at, k.max_uses, k.metadata,
               k.created_at, k.updated_at,
               -- Inline, not capacity._slot_usage(): a view's callers need EXECUTE on
               -- the functions it calls, and app roles have none on private helpers.
               k.usage_count + CASE WHEN k.slots > 0 THEN
                   (SELECT COALESCE(sum(s.used), 0)::integer FROM capacity.code_slots AS s
                     WHERE s.code_id = k.code_id) ELSE 0 END AS usage_count
          FROM capacity.codes AS k) AS c;
COMMENT ON VIEW capacity.code_usage IS 'Per-code usage; near_capacity means at least 90 % used.';
