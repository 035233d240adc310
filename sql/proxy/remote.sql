-- The calls PL/Proxy makes on the shards, one per routing: each runs the shard's function
-- of the same name (TARGET) in its own transaction on the shard (PL/Proxy's autocommit).
-- The public capacity.* functions of the proxy wrap them (sql/proxy/functions).

-- Routed by code.
CREATE OR REPLACE FUNCTION capacity_cluster.claim(
    code text, holder text, lock_mode text, units integer, lease interval)
RETURNS capacity.claim_result LANGUAGE plproxy AS $$
    CLUSTER 'pgcapacity_shards'; RUN ON capacity_cluster.shard_of_code(code); TARGET capacity.claim;
$$;

CREATE OR REPLACE FUNCTION capacity_cluster.claim_wait(
    code text, holder text, wait interval, lock_mode text, units integer, lease interval)
RETURNS capacity.claim_result LANGUAGE plproxy AS $$
    CLUSTER 'pgcapacity_shards'; RUN ON capacity_cluster.shard_of_code(code); TARGET capacity.claim_wait;
$$;

CREATE OR REPLACE FUNCTION capacity_cluster.check(code text)
RETURNS capacity.code_status LANGUAGE plproxy AS $$
    CLUSTER 'pgcapacity_shards'; RUN ON capacity_cluster.shard_of_code(code); TARGET capacity.check;
$$;

CREATE OR REPLACE FUNCTION capacity_cluster.release_holder(code text, holder text)
RETURNS capacity.release_result LANGUAGE plproxy AS $$
    CLUSTER 'pgcapacity_shards'; RUN ON capacity_cluster.shard_of_code(code); TARGET capacity.release;
$$;

CREATE OR REPLACE FUNCTION capacity_cluster.revoke_code(code text)
RETURNS TABLE (revoked integer, claims_ended integer) LANGUAGE plproxy AS $$
    CLUSTER 'pgcapacity_shards'; RUN ON capacity_cluster.shard_of_code(code); TARGET capacity.revoke_code;
$$;

-- Routed by claim id.
CREATE OR REPLACE FUNCTION capacity_cluster.release(claim_id bigint, token uuid)
RETURNS capacity.release_result LANGUAGE plproxy AS $$
    CLUSTER 'pgcapacity_shards'; RUN ON capacity_cluster.shard_of_claim(claim_id); TARGET capacity.release;
$$;

CREATE OR REPLACE FUNCTION capacity_cluster.heartbeat(claim_id bigint, token uuid)
RETURNS timestamptz LANGUAGE plproxy AS $$
    CLUSTER 'pgcapacity_shards'; RUN ON capacity_cluster.shard_of_claim(claim_id); TARGET capacity.heartbeat;
$$;

CREATE OR REPLACE FUNCTION capacity_cluster.get_claim(claim_id bigint)
RETURNS capacity.claim_info LANGUAGE plproxy AS $$
    CLUSTER 'pgcapacity_shards'; RUN ON capacity_cluster.shard_of_claim(claim_id); TARGET capacity.get_claim;
$$;

-- Split by code: one call per shard, each with its own codes.
CREATE OR REPLACE FUNCTION capacity_cluster.usage_batch(codes text[])
RETURNS SETOF capacity.code_status LANGUAGE plproxy AS $$
    CLUSTER 'pgcapacity_shards'; SPLIT codes; RUN ON capacity_cluster.shard_of_code(codes);
    TARGET capacity.usage_batch;
$$;

-- On a given shard.
CREATE OR REPLACE FUNCTION capacity_cluster.usage_batch_on(shard integer, codes text[])
RETURNS SETOF capacity.code_status LANGUAGE plproxy AS $$
    CLUSTER 'pgcapacity_shards'; RUN ON shard; SELECT * FROM capacity.usage_batch(codes);
$$;

CREATE OR REPLACE FUNCTION capacity_cluster.upsert_codes_on(shard integer, codes jsonb)
RETURNS TABLE (inserted integer, updated integer) LANGUAGE plproxy AS $$
    CLUSTER 'pgcapacity_shards'; RUN ON shard; SELECT * FROM capacity.upsert_codes(codes);
$$;

CREATE OR REPLACE FUNCTION capacity_cluster.set_holder_limit_on(
    shard integer, pool text, holder text, max_claims integer)
RETURNS void LANGUAGE plproxy AS $$
    CLUSTER 'pgcapacity_shards'; RUN ON shard;
    SELECT capacity.set_holder_limit(pool, holder, max_claims);
$$;

CREATE OR REPLACE FUNCTION capacity_cluster.set_pool_limit_on(shard integer, pool text, max_units integer)
RETURNS void LANGUAGE plproxy AS $$
    CLUSTER 'pgcapacity_shards'; RUN ON shard; SELECT capacity.set_pool_limit(pool, max_units);
$$;

-- On every shard. The shard's number is its claim ids' (`pgcapacity cluster install`).
CREATE OR REPLACE FUNCTION capacity_cluster.shards_of_pool(pool text)
RETURNS TABLE (shard integer) LANGUAGE plproxy AS $$
    CLUSTER 'pgcapacity_shards'; RUN ON ALL;
    SELECT (s.seqmin >> 48)::integer FROM pg_catalog.pg_sequence AS s
     WHERE s.seqrelid = pg_catalog.pg_get_serial_sequence('capacity.claims', 'claim_id')::regclass
       AND EXISTS (SELECT FROM capacity.list_codes(NULL, pool, NULL, 1));
$$;

-- On the proxy itself, in a transaction of its own.
CREATE OR REPLACE FUNCTION capacity_cluster.commit_placement(
    pools text[], pool_shards integer[], codes text[], code_shards integer[])
RETURNS void LANGUAGE plproxy AS $$
    CLUSTER 'pgcapacity_proxy'; RUN ON 0; TARGET capacity_cluster.record_placement;
$$;

CREATE OR REPLACE FUNCTION capacity_cluster.reconcile(fix boolean)
RETURNS TABLE (code text, usage_count integer, active_claims integer, drift integer) LANGUAGE plproxy AS $$
    CLUSTER 'pgcapacity_shards'; RUN ON ALL; TARGET capacity.reconcile;
$$;

CREATE OR REPLACE FUNCTION capacity_cluster.expire_idle_claims(idle interval, batch_size integer)
RETURNS SETOF capacity.expiry_result LANGUAGE plproxy AS $$
    CLUSTER 'pgcapacity_shards'; RUN ON ALL; TARGET capacity.expire_idle_claims;
$$;

CREATE OR REPLACE FUNCTION capacity_cluster.prune_events(older_than interval, batch_size integer)
RETURNS TABLE (events_deleted integer, claims_deleted integer) LANGUAGE plproxy AS $$
    CLUSTER 'pgcapacity_shards'; RUN ON ALL; TARGET capacity.prune_events;
$$;

CREATE OR REPLACE FUNCTION capacity_cluster.version()
RETURNS SETOF text LANGUAGE plproxy AS $$
    CLUSTER 'pgcapacity_shards'; RUN ON ALL; SELECT capacity.version();
$$;

CREATE OR REPLACE FUNCTION capacity_cluster.grant_app_access(app_role name)
RETURNS SETOF text LANGUAGE plproxy AS $$
    CLUSTER 'pgcapacity_shards'; RUN ON ALL; SELECT capacity.grant_app_access(app_role)::text;
$$;

-- On the first shard: the same answer everywhere.
CREATE OR REPLACE FUNCTION capacity_cluster.error_codes()
RETURNS TABLE (name text, sqlstate text, http_status integer, description text, aliases text[], hint text)
LANGUAGE plproxy AS $$
    CLUSTER 'pgcapacity_shards'; RUN ON 0; TARGET capacity.error_codes;
$$;

-- Listings, series and the API's periodic work: on the shards shards_for() names, or on all.
CREATE OR REPLACE FUNCTION capacity_cluster.list_codes(search text, pool text, after text, page_size integer)
RETURNS SETOF capacity.code_status LANGUAGE plproxy AS $$
    CLUSTER 'pgcapacity_shards'; RUN ON capacity_cluster.shards_for(NULL, pool); TARGET capacity.list_codes;
$$;

CREATE OR REPLACE FUNCTION capacity_cluster.list_claims(code text, holder text, after bigint, page_size integer)
RETURNS SETOF capacity.claim_info LANGUAGE plproxy AS $$
    CLUSTER 'pgcapacity_shards'; RUN ON capacity_cluster.shards_for(code, NULL); TARGET capacity.list_claims;
$$;

CREATE OR REPLACE FUNCTION capacity_cluster.activity(span interval, bucket interval, code text, pool text)
RETURNS TABLE (bucket_start timestamptz, claimed integer, released integer, expired integer,
               revoked integer, units_in_use integer) LANGUAGE plproxy AS $$
    CLUSTER 'pgcapacity_shards'; RUN ON capacity_cluster.shards_for(code, pool); TARGET capacity.activity;
$$;

CREATE OR REPLACE FUNCTION capacity_cluster.publish_changes()
RETURNS TABLE (published boolean, codes integer, reason text) LANGUAGE plproxy AS $$
    CLUSTER 'pgcapacity_shards'; RUN ON ALL; TARGET capacity.publish_changes;
$$;

CREATE OR REPLACE FUNCTION capacity_cluster.refresh_dashboard(force boolean, max_age interval)
RETURNS TABLE (refreshed boolean, refreshed_at timestamptz, reason text) LANGUAGE plproxy AS $$
    CLUSTER 'pgcapacity_shards'; RUN ON ALL; TARGET capacity.refresh_dashboard;
$$;

CREATE OR REPLACE FUNCTION capacity_cluster.tune_slots(min_claims integer, slots integer)
RETURNS TABLE (code text, slot_count integer) LANGUAGE plproxy AS $$
    CLUSTER 'pgcapacity_shards'; RUN ON ALL; TARGET capacity.tune_slots;
$$;
