-- Retention: deletes events and ended claims older than `older_than`, at most
-- batch_size of each per call (call again while either count equals batch_size).
CREATE OR REPLACE FUNCTION capacity.prune_events(
    older_than interval DEFAULT '90 days', batch_size integer DEFAULT 10000)
RETURNS TABLE (events_deleted integer, claims_deleted integer)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    v_cutoff timestamptz;
BEGIN
    IF older_than IS NULL OR older_than < interval '0' THEN
        RAISE EXCEPTION 'VALIDATION_ERROR: older_than must be a non-negative interval'
            USING ERRCODE = 'CP001', DETAIL = jsonb_build_object('field', 'older_than')::text,
                  HINT = 'Pass an interval such as ''90 days'', or leave it out for the default.';
    END IF;
    IF batch_size IS NULL OR batch_size < 1 THEN
        RAISE EXCEPTION 'VALIDATION_ERROR: batch_size must be at least 1'
            USING ERRCODE = 'CP001', DETAIL = jsonb_build_object('field', 'batch_size')::text,
                  HINT = 'Pass a positive batch_size, or leave it out for the default.';
    END IF;
    v_cutoff := now() - older_than;
    DELETE FROM capacity.events AS e
     WHERE e.event_id IN (SELECT e2.event_id FROM capacity.events AS e2
                           WHERE e2.occurred_at < v_cutoff LIMIT batch_size);
    GET DIAGNOSTICS events_deleted = ROW_COUNT;
    -- Oldest claims first (claim ids grow with time): ended ones are at the front.
    DELETE FROM capacity.claims AS cl
     WHERE cl.claim_id IN (SELECT c2.claim_id FROM capacity.claims AS c2
                            WHERE c2.released_at < v_cutoff ORDER BY c2.claim_id LIMIT batch_size);
    GET DIAGNOSTICS claims_deleted = ROW_COUNT;
    RETURN NEXT;
END
$$;
