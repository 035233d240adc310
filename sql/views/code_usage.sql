-- One row per code: usage, remaining units, utilisation and an independent count of its
-- active claims (equal to usage_count by the schema's invariant).
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
  FROM capacity.codes AS c;
COMMENT ON VIEW capacity.code_usage IS 'Per-code usage; near_capacity means at least 90 % used.';
