-- The last event the stream (events_after.sql) can deliver now: where a reader that wants only what happens
-- from now on starts (events_after(last_event_id())). NULL when there is none yet.
CREATE OR REPLACE FUNCTION capacity.last_event_id()
RETURNS bigint
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT e.event_id FROM capacity.events AS e
     WHERE e.xact_id < pg_snapshot_xmin(pg_current_snapshot())
     ORDER BY e.xact_id DESC, e.event_id DESC
     LIMIT 1
$$;
