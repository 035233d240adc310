-- Activity over time, from the event log: per bucket of the last `span`, the claims,
-- releases, expiries and revokes that committed in it (each counted once, whatever its
-- units), and the units in use at its end, for one code, one pool or every code. Buckets are aligned on the Unix epoch, the last
-- one holds now(), and buckets without events are there with zeros. Units in use are
-- counted back from the current usage, so pruning older events changes nothing inside
-- the span. No locks; the BRIN index on occurred_at keeps the scan to the span.
CREATE OR REPLACE FUNCTION capacity.activity(
    span interval DEFAULT '1 hour', bucket interval DEFAULT '1 minute',
    code text DEFAULT NULL, pool text DEFAULT NULL)
RETURNS TABLE (bucket_start timestamptz, claimed integer, released integer,
               expired integer, revoked integer, units_in_use integer)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_buckets integer;
    v_code    text;
    v_code_id bigint;
    v_pool    text;
BEGIN
    IF activity.bucket IS NULL OR activity.bucket < interval '1 second'
       OR activity.bucket > interval '1 day' THEN
        RAISE EXCEPTION 'VALIDATION_ERROR: bucket must be between 1 second and 1 day, got %',
                        COALESCE(activity.bucket::text, 'null')
            USING ERRCODE = 'CP001', DETAIL = jsonb_build_object('field', 'bucket')::text,
                  HINT = 'Use a bucket such as ''1 minute'', ''10 minutes'' or ''1 hour''.';
    END IF;
    IF activity.span IS NULL OR activity.span < activity.bucket
       OR activity.span > interval '31 days' THEN
        RAISE EXCEPTION 'VALIDATION_ERROR: span must be between one bucket and 31 days, got %',
                        COALESCE(activity.span::text, 'null')
            USING ERRCODE = 'CP001', DETAIL = jsonb_build_object('field', 'span')::text,
                  HINT = 'Use a span such as ''1 hour'' or ''1 day'', at least the bucket''s length.';
    END IF;
    v_buckets := ceil(extract(epoch FROM activity.span) / extract(epoch FROM activity.bucket));
    IF v_buckets > 1440 THEN
        RAISE EXCEPTION 'VALIDATION_ERROR: span / bucket gives % buckets, at most 1440 are allowed',
                        v_buckets
            USING ERRCODE = 'CP001', DETAIL = jsonb_build_object('field', 'bucket')::text,
                  HINT = 'Use longer buckets for a long span (''1 day'' in ''1 minute'' buckets is the most).';
    END IF;
    IF activity.code IS NOT NULL THEN
        v_code := capacity._require_code(activity.code);
        SELECT k.code_id INTO v_code_id FROM capacity.codes AS k WHERE k.code = v_code;
        IF NOT FOUND THEN
            PERFORM capacity._raise_code_not_found(v_code);
        END IF;
    END IF;
    IF activity.pool IS NOT NULL THEN
        v_pool := capacity._require_pool(activity.pool);
    END IF;
    -- One statement, so the current usage and the events are read from one snapshot.
    RETURN QUERY
        WITH span_start AS (
            SELECT date_bin(activity.bucket, now(), timestamptz 'epoch')
                   - (v_buckets - 1) * activity.bucket AS first_start
        ), buckets AS (
            SELECT s.first_start + i * activity.bucket AS start
              FROM span_start AS s, generate_series(0, v_buckets - 1) AS i
        ), counts AS (
            -- An event stamped after now() (its transaction began after this one) is
            -- counted in the last bucket.
            SELECT LEAST(date_bin(activity.bucket, e.occurred_at, timestamptz 'epoch'),
                         s.first_start + (v_buckets - 1) * activity.bucket) AS start,
                   count(*) FILTER (WHERE e.kind = 'claimed')  AS claimed,
                   count(*) FILTER (WHERE e.kind = 'released') AS released,
                   count(*) FILTER (WHERE e.kind = 'expired')  AS expired,
                   count(*) FILTER (WHERE e.kind = 'revoked')  AS revoked,
                   sum(CASE e.kind WHEN 'claimed' THEN e.units
                                   WHEN 'released' THEN -e.units WHEN 'expired' THEN -e.units
                                   WHEN 'revoked' THEN -e.units ELSE 0 END) AS net
              FROM capacity.events AS e, span_start AS s
             WHERE e.occurred_at >= s.first_start
               AND (v_code_id IS NULL OR e.code_id = v_code_id)
               AND (v_pool IS NULL OR e.pool = v_pool)
             GROUP BY 1
        ), current_usage AS (
            SELECT COALESCE(sum(capacity._total_usage(k)), 0) AS units
              FROM capacity.codes AS k
             WHERE (v_code_id IS NULL OR k.code_id = v_code_id)
               AND (v_pool IS NULL OR k.pool = v_pool)
        ), series AS (
            SELECT b.start,
                   COALESCE(c.claimed, 0) AS claimed, COALESCE(c.released, 0) AS released,
                   COALESCE(c.expired, 0) AS expired, COALESCE(c.revoked, 0) AS revoked,
                   COALESCE(c.net, 0) AS net
              FROM buckets AS b LEFT JOIN counts AS c USING (start)
        )
        SELECT s.start, s.claimed::integer, s.released::integer, s.expired::integer,
               s.revoked::integer,
               -- the units in use now, less what the later buckets added
               (u.units - COALESCE(sum(s.net) OVER later, 0))::integer
          FROM series AS s, current_usage AS u
        WINDOW later AS (ORDER BY s.start DESC ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)
         ORDER BY s.start;
END
$$;
