-- Per-pool summary: the rows capacity.refresh_dashboard() last wrote (a materialized view
-- until migration 0009). Readers never wait: a refresh replaces the rows in one
-- transaction, so a reader sees the old set or the new one.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_class
                WHERE oid = to_regclass('capacity.dashboard') AND relkind = 'm') THEN
        DROP MATERIALIZED VIEW capacity.dashboard;
    END IF;
END
$$;
CREATE OR REPLACE VIEW capacity.dashboard AS
SELECT p.pool, p.codes, p.active_codes, p.full_codes, p.near_capacity_codes, p.units_used,
       p.units_total, p.active_claims, p.claims_last_hour, p.expiries_last_hour, p.refreshed_at
  FROM capacity.dashboard_pools AS p;
COMMENT ON VIEW capacity.dashboard IS
    'Per-pool summary, refreshed by capacity.refresh_dashboard() (the API runs it every PGCAPACITY_DASHBOARD_REFRESH_MS).';
