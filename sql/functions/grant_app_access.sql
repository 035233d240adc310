-- Least privilege: lets a role execute the public functions and read the views, nothing
-- else (no table access); the admin functions (this one, pg_cron scheduling) stay the
-- owner's. Admin-only; re-run by the installer after every upgrade.
CREATE OR REPLACE FUNCTION capacity.grant_app_access(app_role name)
RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    f record;
BEGIN
    IF app_role IS NULL OR NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = app_role) THEN
        RAISE EXCEPTION 'VALIDATION_ERROR: role % does not exist', COALESCE(quote_ident(app_role), 'null')
            USING ERRCODE = 'CP001', DETAIL = jsonb_build_object('field', 'app_role')::text,
                  HINT = 'Create the role first (CREATE ROLE ... LOGIN), then grant it access.';
    END IF;
    EXECUTE format('GRANT USAGE ON SCHEMA capacity TO %I', app_role);
    FOR f IN
        SELECT p.oid::regprocedure AS signature
          FROM pg_proc AS p
         WHERE p.pronamespace = 'capacity'::regnamespace
           AND p.proname !~ '^_'
           AND p.proname NOT IN ('grant_app_access', 'schedule_maintenance', 'unschedule_maintenance')
    LOOP
        EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO %I', f.signature, app_role);
    END LOOP;
    FOR f IN SELECT c.oid::regclass AS view_name FROM pg_class AS c
              WHERE c.relnamespace = 'capacity'::regnamespace AND c.relkind IN ('v', 'm')
    LOOP
        EXECUTE format('GRANT SELECT ON %s TO %I', f.view_name, app_role);
    END LOOP;
    INSERT INTO capacity.app_roles (role_name) VALUES (app_role) ON CONFLICT DO NOTHING;
END
$$;
