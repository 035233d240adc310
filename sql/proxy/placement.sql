-- The shard of a pool, placing it the first time: where its codes are if some shard has
-- them already (at most one may), else where its name hashes to. The placement is
-- committed at once (commit_placement), before the caller writes any shard.
CREATE OR REPLACE FUNCTION capacity_cluster.place_pool(p_pool text)
RETURNS integer
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_shard  integer;
    v_shards integer[];
    v_chosen integer;
BEGIN
    SELECT p.shard INTO v_shard FROM capacity_cluster.pool_shards AS p WHERE p.pool = p_pool;
    IF FOUND THEN
        RETURN v_shard;
    END IF;
    v_shards := ARRAY(SELECT s.shard FROM capacity_cluster.shards_of_pool(p_pool) AS s ORDER BY 1);
    IF cardinality(v_shards) > 1 THEN
        RAISE EXCEPTION 'VALIDATION_ERROR: pool % has codes on shards %', p_pool, array_to_string(v_shards, ', ')
            USING ERRCODE = 'CP001', DETAIL = jsonb_build_object('field', 'pool', 'shards', v_shards)::text,
                  HINT = 'A pool lives on one shard: move its codes to one shard, then run '
                         '`pgcapacity cluster install` again.';
    END IF;
    v_chosen := coalesce(v_shards[1], capacity_cluster.hash_shard(p_pool));
    PERFORM capacity_cluster.commit_placement(ARRAY[p_pool], ARRAY[v_chosen], '{}', '{}');
    -- A concurrent caller may have placed it first: what is recorded is the placement.
    SELECT p.shard INTO v_shard FROM capacity_cluster.pool_shards AS p WHERE p.pool = p_pool;
    RETURN coalesce(v_shard, v_chosen);
END
$$;
