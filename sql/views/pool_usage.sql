-- One row per pool (with a code or a limit): the units its active claims hold across all
-- of its codes, and its cap (max_units NULL = uncapped, capacity.set_pool_limit).
CREATE OR REPLACE VIEW capacity.pool_usage AS
SELECT p.pool,
       l.max_units,
       u.units_in_use,
       l.max_units - u.units_in_use AS remaining,
       COALESCE(u.units_in_use >= l.max_units, false) AS has_reached_limit
  FROM (SELECT k.pool FROM capacity.codes AS k UNION SELECT l2.pool FROM capacity.pool_limits AS l2) AS p
  LEFT JOIN capacity.pool_limits AS l ON l.pool = p.pool
 CROSS JOIN LATERAL (SELECT COALESCE(sum(cl.units), 0)::integer AS units_in_use
                       FROM capacity.claims AS cl
                      WHERE cl.pool = p.pool AND cl.released_at IS NULL) AS u;
COMMENT ON VIEW capacity.pool_usage IS 'Per-pool units in use and caps (remaining NULL = uncapped).';
