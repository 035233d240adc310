-- Publishes pending change marks on channel pgcapacity_changes: the changed codes,
-- comma-separated, in as few notifications as fit 7 000 bytes each ('*' = drop everything,
-- sent for TRUNCATE or more than 20 notifications' worth). One publisher at a time: a
-- concurrent call returns reason 'busy' and the running one takes the marks. The claims
-- and expiries the marks count are added to capacity.pool_activity (the dashboard's last
-- hour): a mark is consumed exactly once, after its write committed.
CREATE OR REPLACE FUNCTION capacity.publish_changes()
RETURNS TABLE (published boolean, codes integer, reason text)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    v_marks   bigint;
    v_codes   text[];
    v_payload text := '';
    v_code    text;
BEGIN
    IF NOT pg_try_advisory_xact_lock(capacity._lock_namespace(), -4) THEN
        RETURN QUERY SELECT false, 0, 'busy'::text;
        RETURN;
    END IF;
    WITH consumed AS (
        DELETE FROM capacity.pending_changes AS p
        RETURNING p.codes, p.pool, p.claims, p.expiries, p.marked_at
    ), counted AS (
        INSERT INTO capacity.pool_activity AS a (pool, minute, claims, expiries)
        SELECT m.pool, pg_catalog.date_trunc('minute', m.marked_at, 'UTC'), sum(m.claims), sum(m.expiries)
          FROM consumed AS m
         WHERE m.claims > 0 OR m.expiries > 0
         GROUP BY 1, 2
        ON CONFLICT (pool, minute) DO UPDATE
           SET claims = a.claims + EXCLUDED.claims, expiries = a.expiries + EXCLUDED.expiries
    )
    SELECT count(*), (SELECT array_agg(DISTINCT c ORDER BY c) FROM consumed, unnest(consumed.codes) AS c)
      INTO v_marks, v_codes
      FROM consumed;
    IF v_marks = 0 THEN
        RETURN QUERY SELECT false, 0, 'nothing'::text;
        RETURN;
    END IF;
    UPDATE capacity.change_feed SET published = change_feed.published + 1, published_at = now();
    IF '*' = ANY (v_codes) OR octet_length(array_to_string(v_codes, ',')) > 20 * 7000 THEN
        PERFORM pg_notify('pgcapacity_changes', '*');
    ELSIF v_codes IS NOT NULL THEN
        FOREACH v_code IN ARRAY v_codes LOOP
            IF octet_length(v_payload) + octet_length(v_code) + 1 > 7000 THEN
                PERFORM pg_notify('pgcapacity_changes', v_payload);
                v_payload := '';
            END IF;
            v_payload := CASE WHEN v_payload = '' THEN v_code ELSE v_payload || ',' || v_code END;
        END LOOP;
        PERFORM pg_notify('pgcapacity_changes', v_payload);
    END IF;
    RETURN QUERY SELECT true, COALESCE(cardinality(v_codes), 0), 'changes'::text;
END
$$;
