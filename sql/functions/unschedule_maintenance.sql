-- Removes the jobs schedule_maintenance() created; returns their names.
CREATE OR REPLACE FUNCTION capacity.unschedule_maintenance()
RETURNS SETOF text
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_name text;
    -- Run dynamically: the cron schema exists only where pg_cron is installed.
    v_jobs text := 'SELECT jobname FROM cron.job WHERE jobname LIKE ''pgcapacity-%'' ORDER BY jobname';
    v_unschedule text := 'SELECT cron.unschedule($1)';
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_cron') THEN
        RETURN;  -- nothing can be scheduled without it
    END IF;
    FOR v_name IN EXECUTE v_jobs LOOP
        EXECUTE v_unschedule USING v_name;
        RETURN NEXT v_name;
    END LOOP;
END
$$;
