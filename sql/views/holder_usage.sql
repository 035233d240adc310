-- One row per (pool, holder) with a limit or an active claim.
CREATE OR REPLACE VIEW capacity.holder_usage AS
SELECT h.pool,
       h.holder,
       h.active_claims,
       h.max_claims,
       h.max_claims IS NOT NULL AND h.active_claims >= h.max_claims AS has_reached_limit,
       h.max_claims - h.active_claims AS remaining
  FROM capacity.holders AS h
 WHERE h.max_claims IS NOT NULL OR h.active_claims > 0;
COMMENT ON VIEW capacity.holder_usage IS 'Per-holder claims and limits (remaining NULL = unlimited).';
