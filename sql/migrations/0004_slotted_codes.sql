-- 0004: slotted codes. A hot code's capacity is split over several slot rows so that
-- concurrent claims update different rows instead of queueing on one.
--
-- For a code with slots > 0:
--   usage  = codes.usage_count (claims counted outside any slot, e.g. made before the
--            switch) + sum(code_slots.used)
--   max_uses = codes.usage_count + sum(code_slots.cap), kept true by every function, so
--            each slot refusing to go over its cap is what keeps usage <= max_uses.
-- A claim records the slot row it took (claims.slot_id); releasing it gives the unit back
-- to that slot. Slot ids are never reused: a claim whose slot row is gone (the code was
-- re-sliced or made plain, which folds the slot's usage into codes.usage_count) is
-- counted in codes.usage_count, and its release decrements that.
--
-- Lock order (extends 0001): code row, then slot rows (by slot), then claim rows, then
-- holder rows. Claims on slotted codes never lock the code row.

ALTER TABLE capacity.codes
    ADD COLUMN slots smallint NOT NULL DEFAULT 0,
    ADD CONSTRAINT codes_slots_range CHECK (slots BETWEEN 0 AND 256);
COMMENT ON COLUMN capacity.codes.slots IS
    '0: plain (usage_count is the usage). N > 0: capacity spread over N rows of code_slots.';

-- One share of a slotted code's capacity. fillfactor leaves room for HOT updates.
CREATE TABLE capacity.code_slots (
    slot_id bigint   GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    code_id bigint   NOT NULL REFERENCES capacity.codes (code_id),
    slot    smallint NOT NULL,
    used    integer  NOT NULL DEFAULT 0,
    cap     integer  NOT NULL,
    CONSTRAINT code_slots_code_slot_key UNIQUE (code_id, slot),
    CONSTRAINT code_slots_used_within_cap CHECK (used >= 0 AND used <= cap)
) WITH (fillfactor = 50);
COMMENT ON TABLE capacity.code_slots IS
    'Capacity shares of slotted codes: claims take a unit from any slot with room.';

ALTER TABLE capacity.claims ADD COLUMN slot_id bigint;
COMMENT ON COLUMN capacity.claims.slot_id IS
    'The code_slots row this claim holds a unit of; NULL or a removed slot: counted in codes.usage_count.';

ALTER TYPE capacity._code_spec ADD ATTRIBUTE slots integer;
ALTER TYPE capacity._code_spec ADD ATTRIBUTE has_slots boolean;

-- The dashboard counts slotted usage too.
DROP MATERIALIZED VIEW capacity.dashboard;
CREATE MATERIALIZED VIEW capacity.dashboard AS
WITH code_totals AS (
    SELECT c.pool,
           count(*)::integer AS codes,
           count(*) FILTER (WHERE c.is_active
                              AND (c.expires_at IS NULL OR c.expires_at > now()))::integer AS active_codes,
           count(*) FILTER (WHERE u.usage >= c.max_uses)::integer AS full_codes,
           count(*) FILTER (WHERE u.usage >= 0.9 * c.max_uses)::integer AS near_capacity_codes,
           sum(u.usage)::bigint AS units_used,
           sum(c.max_uses)::bigint AS units_total
      FROM capacity.codes AS c
     CROSS JOIN LATERAL (
           SELECT c.usage_count + COALESCE((SELECT sum(s.used) FROM capacity.code_slots AS s
                                            WHERE s.code_id = c.code_id AND c.slots > 0), 0) AS usage
     ) AS u
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

-- A claim no longer locks its code row when the code is slotted, so the foreign key's
-- FOR KEY SHARE on the code row would become the new hot spot (one multixact per
-- concurrent claimer). Codes are never deleted by pgcapacity (revoke deactivates them),
-- so every function keeps the reference valid without the check.
ALTER TABLE capacity.claims DROP CONSTRAINT claims_code_id_fkey;
