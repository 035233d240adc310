-- The installed schema version of the shards; refused while they differ (an upgrade
-- under way: `pgcapacity cluster install` brings them to one version).
CREATE OR REPLACE FUNCTION capacity.version()
RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_versions text[] := ARRAY(SELECT DISTINCT v FROM capacity_cluster.version() AS v ORDER BY v);
BEGIN
    IF cardinality(v_versions) <> 1 THEN
        RAISE EXCEPTION 'SERVICE_UNAVAILABLE: the shards run different versions (%)', array_to_string(v_versions, ', ')
            USING ERRCODE = 'CP015', DETAIL = jsonb_build_object('versions', v_versions)::text,
                  HINT = 'Run `pgcapacity cluster install` to bring every shard to one version.';
    END IF;
    RETURN v_versions[1];
END
$$;
