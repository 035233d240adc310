-- The event log is followed per shard (event ids are each shard's own, so no single
-- position resumes a stream over all of them): through the proxy these answer NOT_FOUND,
-- and GET /v1/events with it. Read capacity.events_after() on each shard instead.
CREATE OR REPLACE FUNCTION capacity.events_after(after_event_id bigint DEFAULT NULL, max_events integer DEFAULT 1000)
RETURNS TABLE (event_id bigint, occurred_at timestamptz, kind text, code text, pool text,
               holder text, claim_id bigint, units integer, usage_after integer)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM capacity_cluster.raise_per_shard('events_after');
END
$$;

-- See events_after.
CREATE OR REPLACE FUNCTION capacity.last_event_id()
RETURNS bigint
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM capacity_cluster.raise_per_shard('last_event_id');
    RETURN NULL;
END
$$;
