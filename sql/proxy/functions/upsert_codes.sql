-- Creates or updates codes on their shards. The whole document is parsed and validated
-- first (by the servers' own parser: the same errors as on one server), before any shard
-- is written; then each shard takes its codes in one call, all or nothing on that shard.
-- Across shards there is no atomic commit: if a shard refuses its part (a limit below
-- usage, say), the shards called before it keep theirs. The error says which code;
-- upserting is idempotent, so the fix is to correct the document and send it again.
-- All codes of a pool live on the pool's shard (so holder limits and pool caps stay
-- exact); a code never moves between shards. Where new codes live is committed before
-- any shard is written, so a failed batch never leaves a code the proxy cannot route.
CREATE OR REPLACE FUNCTION capacity.upsert_codes(codes jsonb)
RETURNS TABLE (inserted integer, updated integer)
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    e_state text; e_message text; e_detail text; e_hint text;
    part record;
    v_inserted integer := 0;
    v_updated  integer := 0;
BEGIN
    CREATE TEMPORARY TABLE IF NOT EXISTS pg_temp.upsert_placement (
        ord bigint, code text, element jsonb, shard integer, known boolean, pool_shard integer)
        ON COMMIT DROP;
    TRUNCATE pg_temp.upsert_placement;
    INSERT INTO pg_temp.upsert_placement
        SELECT e.ord, s.code, e.element, coalesce(known.shard, s.pool_shard), known.shard IS NOT NULL,
               s.pool_shard
          FROM jsonb_array_elements(upsert_codes.codes) WITH ORDINALITY AS e(element, ord)
          JOIN (SELECT row_number() OVER () AS ord, x.code, x.has_pool,
                       CASE WHEN x.has_pool THEN capacity_cluster.place_pool(x.pool) END AS pool_shard
                  FROM capacity._code_specs(upsert_codes.codes) AS x) AS s ON s.ord = e.ord
          LEFT JOIN capacity_cluster.code_shards AS known ON known.code = s.code;
    -- A new code without a pool goes to the default pool's shard.
    IF EXISTS (SELECT FROM pg_temp.upsert_placement AS u WHERE u.shard IS NULL) THEN
        UPDATE pg_temp.upsert_placement AS u SET shard = capacity_cluster.place_pool('default')
         WHERE u.shard IS NULL;
    END IF;
    -- A code given twice lives where its first element puts it.
    UPDATE pg_temp.upsert_placement AS u SET shard = f.shard
      FROM (SELECT DISTINCT ON (x.code) x.code, x.shard FROM pg_temp.upsert_placement AS x
             ORDER BY x.code, x.ord) AS f
     WHERE u.code = f.code AND u.shard <> f.shard;
    SELECT u.code, u.shard AS lives_on, u.pool_shard AS pool_on, u.element ->> 'pool' AS pool INTO part
      FROM pg_temp.upsert_placement AS u
     WHERE u.pool_shard IS NOT NULL AND u.pool_shard <> u.shard
     LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'VALIDATION_ERROR: code % lives on shard %, pool % on shard %', part.code,
                part.lives_on, part.pool, part.pool_on
            USING ERRCODE = 'CP001', DETAIL = jsonb_build_object('field', 'codes', 'code', part.code)::text,
                  HINT = 'A code cannot move between shards: create a new code in that pool instead.';
    END IF;
    PERFORM capacity_cluster.commit_placement('{}', '{}',
        ARRAY(SELECT u.code FROM pg_temp.upsert_placement AS u WHERE NOT u.known ORDER BY u.ord),
        ARRAY(SELECT u.shard FROM pg_temp.upsert_placement AS u WHERE NOT u.known ORDER BY u.ord));
    FOR part IN
        SELECT u.shard, jsonb_agg(u.element ORDER BY u.ord) AS document
          FROM pg_temp.upsert_placement AS u GROUP BY u.shard ORDER BY u.shard
    LOOP
        SELECT v_inserted + r.inserted, v_updated + r.updated INTO v_inserted, v_updated
          FROM capacity_cluster.upsert_codes_on(part.shard, part.document) AS r;
    END LOOP;
    RETURN QUERY SELECT v_inserted, v_updated;
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS e_state = RETURNED_SQLSTATE, e_message = MESSAGE_TEXT,
                            e_detail = PG_EXCEPTION_DETAIL, e_hint = PG_EXCEPTION_HINT;
    PERFORM capacity_cluster.reraise(e_state, e_message, e_detail, e_hint);
END
$$;
