-- The event stream (GET /v1/events reads it): the audit log in delivery order.
--
-- Event ids are taken when a claim writes, not when it commits, so "every id above the last
-- one seen" would miss an event whose transaction commits after a later id was read. The
-- stream orders events by (writing transaction, event id) instead and hands out only
-- events of transactions older than every transaction still running (the snapshot's
-- xmin): those are all ended, so no commit can land behind a reader's position. The cost:
-- an event is delivered only once every transaction that began writing before it has
-- ended, in any database of the server; one held open for a minute holds the stream back a
-- minute (it loses nothing).

-- Up to max_events events after after_event_id in delivery order (NULL: from the oldest
-- kept). An id older than the oldest event kept (pruned) reads from the oldest kept; an
-- id that was never in the log is a VALIDATION_ERROR.
CREATE OR REPLACE FUNCTION capacity.events_after(after_event_id bigint DEFAULT NULL, max_events integer DEFAULT 1000)
RETURNS TABLE (event_id bigint, occurred_at timestamptz, kind text, code text, pool text,
               holder text, claim_id bigint, units integer, usage_after integer)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_xact    xid8 := '0'::xid8;
    v_after   bigint := 0;  -- with v_xact 0: before every event
    v_horizon xid8 := pg_snapshot_xmin(pg_current_snapshot());
BEGIN
    IF max_events IS NULL OR max_events < 1 OR max_events > 10000 THEN
        RAISE EXCEPTION 'VALIDATION_ERROR: max_events must be between 1 and 10000, not %', COALESCE(max_events::text, 'null')
            USING ERRCODE = 'CP001', DETAIL = jsonb_build_object('field', 'max_events')::text,
                  HINT = 'Read the stream in batches of up to 10000 events.';
    END IF;
    IF after_event_id IS NOT NULL THEN
        SELECT e.xact_id INTO v_xact FROM capacity.events AS e WHERE e.event_id = after_event_id;
        IF FOUND THEN
            v_after := after_event_id;
        ELSIF after_event_id >= (SELECT min(e.event_id) FROM capacity.events AS e) THEN
            RAISE EXCEPTION 'VALIDATION_ERROR: event % is not in the event log', after_event_id
                USING ERRCODE = 'CP001', DETAIL = jsonb_build_object('field', 'after_event_id')::text,
                      HINT = 'Resume from an event_id the stream delivered, or read from the start (NULL).';
        ELSE
            v_xact := '0'::xid8;  -- pruned (or an empty log): from the oldest event kept
        END IF;
    END IF;
    RETURN QUERY
    SELECT e.event_id, e.occurred_at, e.kind::text, e.code, e.pool, e.holder, e.claim_id,
           e.units, e.usage_after
      FROM capacity.events AS e
     WHERE (e.xact_id, e.event_id) > (v_xact, v_after) AND e.xact_id < v_horizon
     ORDER BY e.xact_id, e.event_id
     LIMIT max_events;
    RETURN;
END
$$;
