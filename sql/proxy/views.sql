-- The views of a single server over every shard (each shard's rows; a pool and its
-- holders live on one shard, so no row needs adding up across shards).

CREATE OR REPLACE FUNCTION capacity_cluster.code_usage()
RETURNS TABLE (code text, pool text, is_active boolean, expires_at timestamptz, usage_count integer,
               max_uses integer, remaining integer, utilisation numeric, near_capacity boolean,
               has_reached_limit boolean, active_claims integer, metadata jsonb,
               created_at timestamptz, updated_at timestamptz)
LANGUAGE plproxy AS $$
    CLUSTER 'pgcapacity_shards'; RUN ON ALL; SELECT * FROM capacity.code_usage;
$$;
CREATE VIEW capacity.code_usage AS SELECT * FROM capacity_cluster.code_usage();

CREATE OR REPLACE FUNCTION capacity_cluster.holder_usage()
RETURNS TABLE (pool text, holder text, active_claims integer, max_claims integer,
               has_reached_limit boolean, remaining integer)
LANGUAGE plproxy AS $$
    CLUSTER 'pgcapacity_shards'; RUN ON ALL; SELECT * FROM capacity.holder_usage;
$$;
CREATE VIEW capacity.holder_usage AS SELECT * FROM capacity_cluster.holder_usage();

CREATE OR REPLACE FUNCTION capacity_cluster.pool_usage()
RETURNS TABLE (pool text, max_units integer, units_in_use integer, remaining integer,
               has_reached_limit boolean)
LANGUAGE plproxy AS $$
    CLUSTER 'pgcapacity_shards'; RUN ON ALL; SELECT * FROM capacity.pool_usage;
$$;
CREATE VIEW capacity.pool_usage AS SELECT * FROM capacity_cluster.pool_usage();

CREATE OR REPLACE FUNCTION capacity_cluster.dashboard()
RETURNS TABLE (pool text, codes integer, active_codes integer, full_codes integer,
               near_capacity_codes integer, units_used bigint, units_total bigint,
               active_claims integer, claims_last_hour integer, expiries_last_hour integer,
               refreshed_at timestamptz)
LANGUAGE plproxy AS $$
    CLUSTER 'pgcapacity_shards'; RUN ON ALL; SELECT * FROM capacity.dashboard;
$$;
CREATE VIEW capacity.dashboard AS SELECT * FROM capacity_cluster.dashboard();

-- The audit log of every shard (event ids are per shard): for audits, not for following
-- the log (read each shard's capacity.events_after for that).
CREATE OR REPLACE FUNCTION capacity_cluster.events()
RETURNS TABLE (event_id bigint, occurred_at timestamptz, kind text, code_id bigint, code text,
               pool text, holder text, claim_id bigint, usage_after integer, units integer)
LANGUAGE plproxy AS $$
    CLUSTER 'pgcapacity_shards'; RUN ON ALL;
    SELECT event_id, occurred_at, kind::text, code_id, code, pool, holder, claim_id, usage_after, units
      FROM capacity.events;
$$;
CREATE VIEW capacity.events AS SELECT * FROM capacity_cluster.events();
