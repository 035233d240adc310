-- One row per (pool, holder) with a limit or an active claim. Limited holders are counted
-- by their counter row; the others by their active claims.
CREATE OR REPLACE VIEW capacity.holder_usage AS
SELECT COALESCE(h.pool, a.pool) AS pool,
       COALESCE(h.holder, a.holder) AS holder,
       COALESCE(h.active_claims, a.active_claims) AS active_claims,
       h.max_claims,
       COALESCE(h.active_claims >= h.max_claims, false) AS has_reached_limit,
       h.max_claims - h.active_claims AS remaining
  FROM capacity.holders AS h
  FULL JOIN (SELECT cl.pool, cl.holder, count(*)::integer AS active_claims
               FROM capacity.claims AS cl
              WHERE cl.released_at IS NULL
              GROUP BY cl.pool, cl.holder) AS a
    ON a.pool = h.pool AND a.holder = h.holder;
COMMENT ON VIEW capacity.holder_usage IS 'Per-holder claims and limits (remaining NULL = unlimited).';
