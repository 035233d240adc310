-- Maintenance by pg_cron, for databases no running API maintains: idle expiry and the
-- dashboard refresh every expire_every, event pruning nightly. Needs the pg_cron
-- extension in this database (cron.database_name); says so clearly when it is missing.
-- Re-running replaces the jobs (pg_cron keeps one job per name). Admin only: the jobs
-- run as the role that schedules them.
CREATE OR REPLACE FUNCTION capacity.schedule_maintenance(
    expire_every interval DEFAULT '1 minute', prune_after interval DEFAULT '90 days')
RETURNS TABLE (job_name text, schedule text, command text, job_id bigint)
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_every text;
    v_job   record;
    -- Run dynamically: the cron schema exists only where pg_cron is installed.
    v_schedule text := 'SELECT cron.schedule($1, $2, $3)';
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_cron') THEN
        RAISE EXCEPTION 'VALIDATION_ERROR: pg_cron is not installed in database %', current_database()
            USING ERRCODE = 'CP001', DETAIL = jsonb_build_object('field', 'pg_cron')::text,
                  HINT = 'Add pg_cron to shared_preload_libraries, set cron.database_name to this database, '
                         'restart, then CREATE EXTENSION pg_cron; or let the running API maintain it.';
    END IF;
    v_every := CASE
        WHEN expire_every IN (interval '1 minute', interval '1 hour', interval '1 day')
            THEN CASE expire_every WHEN interval '1 minute' THEN '* * * * *'
                                   WHEN interval '1 hour' THEN '0 * * * *' ELSE '0 0 * * *' END
        WHEN expire_every = date_trunc('minute', expire_every) AND expire_every < interval '1 hour'
             AND expire_every > interval '0' AND 60 % extract(minute FROM expire_every)::integer = 0
            THEN format('*/%s * * * *', extract(minute FROM expire_every)::integer)
        WHEN expire_every = date_trunc('hour', expire_every) AND expire_every < interval '1 day'
             AND expire_every > interval '0' AND 24 % extract(hour FROM expire_every)::integer = 0
            THEN format('0 */%s * * *', extract(hour FROM expire_every)::integer)
    END;
    IF v_every IS NULL THEN
        RAISE EXCEPTION 'VALIDATION_ERROR: expire_every % is not a cron period', COALESCE(expire_every::text, 'null')
            USING ERRCODE = 'CP001', DETAIL = jsonb_build_object('field', 'expire_every')::text,
                  HINT = 'Use whole minutes or hours that divide an hour or a day (1, 5, 15 minutes; 1, 6 hours), or 1 day.';
    END IF;
    IF prune_after IS NULL OR prune_after < interval '0' THEN
        RAISE EXCEPTION 'VALIDATION_ERROR: prune_after must be a non-negative interval'
            USING ERRCODE = 'CP001', DETAIL = jsonb_build_object('field', 'prune_after')::text,
                  HINT = 'Pass how long events and ended claims are kept, such as ''90 days''.';
    END IF;
    FOR v_job IN
        SELECT * FROM (VALUES
            ('pgcapacity-expire-idle', v_every, 'SELECT capacity.expire_idle_claims()'),
            ('pgcapacity-refresh-dashboard', v_every, 'SELECT capacity.refresh_dashboard()'),
            ('pgcapacity-prune-events', '17 3 * * *',
             format('SELECT capacity.prune_events(%L::interval)', prune_after))
        ) AS j(name, cron, sql)
    LOOP
        job_name := v_job.name;
        schedule := v_job.cron;
        command := v_job.sql;
        EXECUTE v_schedule INTO job_id USING v_job.name, v_job.cron, v_job.sql;
        RETURN NEXT;
    END LOOP;
END
$$;
