-- 0002: the trigger-refreshed dashboard and the change feed that keeps API caches coherent.
--
-- Every statement that writes capacity.codes (claim, release, expiry, revoke, upsert,
-- reconcile: each one changes usage_count or the definition) fires one statement-level
-- trigger. It (1) appends a staleness mark for the dashboard and (2) sends a NOTIFY with
-- the codes it changed, so API instances drop those cached results. Neither takes a row
-- lock: the marks table is insert-only, so the claim path gains no shared hot row.

-- Staleness marks, consumed by capacity.refresh_dashboard(). Unlogged: a crash only loses
-- marks, and every refresher refreshes on its first call anyway (refreshes.refreshed_at).
CREATE UNLOGGED TABLE capacity.dashboard_stale (
    marked_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE capacity.dashboard_stale IS
    'One row per writing statement since the last dashboard refresh (insert-only).';

-- When the dashboard was last refreshed; written only by refresh_dashboard().
CREATE TABLE capacity.dashboard_refreshes (
    singleton    boolean     PRIMARY KEY DEFAULT true CHECK (singleton),
    refreshed_at timestamptz NOT NULL,
    duration_ms  numeric     NOT NULL
);

-- Per-pool summary. A materialized view, refreshed CONCURRENTLY so readers never wait.
CREATE MATERIALIZED VIEW capacity.dashboard AS
WITH code_totals AS (
    SELECT c.pool,
           count(*)::integer AS codes,
           count(*) FILTER (WHERE c.is_active
                              AND (c.expires_at IS NULL OR c.expires_at > now()))::integer AS active_codes,
           count(*) FILTER (WHERE c.usage_count >= c.max_uses)::integer AS full_codes,
           count(*) FILTER (WHERE c.usage_count >= 0.9 * c.max_uses)::integer AS near_capacity_codes,
           sum(c.usage_count)::bigint AS units_used,
           sum(c.max_uses)::bigint AS units_total
      FROM capacity.codes AS c
     GROUP BY c.pool
), claim_totals AS (
    SELECT cl.pool, count(*)::integer AS active_claims
      FROM capacity.claims AS cl
     WHERE cl.released_at IS NULL
     GROUP BY cl.pool
), recent AS (
    SELECT e.pool,
           count(*) FILTER (WHERE e.kind = 'claimed')::integer AS claims_last_hour,
           count(*) FILTER (WHERE e.kind = 'expired')::integer AS expiries_last_hour
      FROM capacity.events AS e
     WHERE e.occurred_at > now() - interval '1 hour'
     GROUP BY e.pool
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
INSERT INTO capacity.dashboard_refreshes (refreshed_at, duration_ms) VALUES (now(), 0);

-- Trigger: marks the dashboard stale and notifies listeners of the changed codes.
-- The payload is a comma-separated code list, or '*' (drop everything) when too long for
-- NOTIFY. SET pgcapacity.notify = off (e.g. per database) turns the notifications off.
CREATE FUNCTION capacity._codes_changed()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_codes text;
BEGIN
    INSERT INTO capacity.dashboard_stale DEFAULT VALUES;
    IF COALESCE(current_setting('pgcapacity.notify', true), '') <> 'off' THEN
        IF TG_OP = 'TRUNCATE' THEN
            PERFORM pg_notify('pgcapacity_changes', '*');
            RETURN NULL;
        END IF;
        SELECT string_agg(DISTINCT ch.code, ',') INTO v_codes FROM changed AS ch;
        PERFORM pg_notify('pgcapacity_changes',
                          CASE WHEN octet_length(v_codes) > 7000 THEN '*' ELSE v_codes END);
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER codes_changed_insert AFTER INSERT ON capacity.codes
    REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION capacity._codes_changed();
CREATE TRIGGER codes_changed_update AFTER UPDATE ON capacity.codes
    REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION capacity._codes_changed();
CREATE TRIGGER codes_changed_delete AFTER DELETE ON capacity.codes
    REFERENCING OLD TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION capacity._codes_changed();
CREATE TRIGGER codes_changed_truncate AFTER TRUNCATE ON capacity.codes
    FOR EACH STATEMENT EXECUTE FUNCTION capacity._codes_changed();
