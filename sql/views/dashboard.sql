-- Per-pool summary, refreshed CONCURRENTLY by capacity.refresh_dashboard() so readers never
-- wait. Its last-hour columns come from capacity.pool_activity (migration 0008), its
-- per-code part sums each slotted code's slot rows once and joins them. Kept here rather
-- than in a migration so that a change to it is one edit: the installer re-creates it
-- (and re-grants it) whenever this file changes.
DROP MATERIALIZED VIEW IF EXISTS capacity.dashboard;
CREATE MATERIALIZED VIEW capacity.dashboard AS
WITH slot_usage AS (
    SELECT s.code_id, sum(s.used) AS used FROM capacity.code_slots AS s GROUP BY s.code_id
), per_code AS (
    SELECT c.pool, c.is_active, c.expires_at, c.max_uses,
           c.usage_count + CASE WHEN c.slots > 0 THEN COALESCE(su.used, 0) ELSE 0 END AS usage
      FROM capacity.codes AS c
      LEFT JOIN slot_usage AS su ON su.code_id = c.code_id
), code_totals AS (
    SELECT u.pool,
           count(*)::integer AS codes,
           count(*) FILTER (WHERE u.is_active
                              AND (u.expires_at IS NULL OR u.expires_at > now()))::integer AS active_codes,
           count(*) FILTER (WHERE u.usage >= u.max_uses)::integer AS full_codes,
           -- usage >= 90 % of max_uses in integers: numeric arithmetic on every code row
           -- took 30 % of the refresh (bigint: 9 * max_uses passes the integer range)
           count(*) FILTER (WHERE 10 * u.usage::bigint >= 9 * u.max_uses::bigint)::integer AS near_capacity_codes,
           sum(u.usage)::bigint AS units_used,
           sum(u.max_uses)::bigint AS units_total
      FROM per_code AS u
     GROUP BY u.pool
), claim_totals AS (
    SELECT cl.pool, count(*)::integer AS active_claims
      FROM capacity.claims AS cl
     WHERE cl.released_at IS NULL
     GROUP BY cl.pool
), recent AS (
    -- Whole minutes: the minute that began more than an hour ago is left out.
    SELECT a.pool,
           sum(a.claims)::integer AS claims_last_hour,
           sum(a.expiries)::integer AS expiries_last_hour
      FROM capacity.pool_activity AS a
     WHERE a.minute > now() - interval '1 hour'
     GROUP BY a.pool
)
SELECT pool,
       COALESCE(t.codes, 0) AS codes,
       COALESCE(t.active_codes, 0) AS active_codes,
       COALESCE(t.full_codes, 0) AS full_codes,
       COALESCE(t.near_capacity_codes, 0) AS near_capacity_codes,
       COALESCE(t.units_used, 0) AS units_used,
       COALESCE(t.units_total, 0) AS units_total,
       COALESCE(a.active_claims, 0) AS active_claims,
       COALESCE(r.claims_last_hour, 0) AS claims_last_hour,
       COALESCE(r.expiries_last_hour, 0) AS expiries_last_hour,
       now() AS refreshed_at
  FROM code_totals AS t
  FULL JOIN claim_totals AS a USING (pool)
  FULL JOIN recent AS r USING (pool);
CREATE UNIQUE INDEX dashboard_pool ON capacity.dashboard (pool);
COMMENT ON MATERIALIZED VIEW capacity.dashboard IS
    'Per-pool summary, refreshed by capacity.refresh_dashboard() (the API runs it every PGCAPACITY_DASHBOARD_REFRESH_MS).';
