-- Least privilege through the proxy: the role gets on every shard what grant_app_access
-- gives it on one server, and on the proxy what its functions need to run as that role.
-- The proxy's functions run as their caller (SECURITY INVOKER), so PL/Proxy reaches the
-- shards as the caller and each shard's own grants decide; hence the role must exist on
-- every shard's server too. Admin-only, like the shards' function it calls.
CREATE OR REPLACE FUNCTION capacity.grant_app_access(app_role name)
RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    e_state text; e_message text; e_detail text; e_hint text;
BEGIN
    IF app_role IS NULL OR NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = app_role) THEN
        RAISE EXCEPTION 'VALIDATION_ERROR: role % does not exist', COALESCE(quote_ident(app_role), 'null')
            USING ERRCODE = 'CP001', DETAIL = jsonb_build_object('field', 'app_role')::text,
                  HINT = 'Create the role first (CREATE ROLE ... LOGIN), then grant it access.';
    END IF;
    PERFORM count(*) FROM capacity_cluster.grant_app_access(app_role);
    PERFORM capacity_cluster.grant_on_proxy(app_role);
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS e_state = RETURNED_SQLSTATE, e_message = MESSAGE_TEXT,
                            e_detail = PG_EXCEPTION_DETAIL, e_hint = PG_EXCEPTION_HINT;
    PERFORM capacity_cluster.reraise(e_state, e_message, e_detail, e_hint);
END
$$;

-- The proxy's side of grant_app_access: its schemas, the foreign servers PL/Proxy
-- connects through, the routing tables (read only: placement is added through the
-- owner's record_placement), every function but the granting ones, and the views.
-- Recorded, so that every install grants the rebuilt functions again.
CREATE OR REPLACE FUNCTION capacity_cluster.grant_on_proxy(app_role name)
RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    f record;
BEGIN
    EXECUTE format('GRANT USAGE ON SCHEMA capacity, capacity_cluster TO %I', app_role);
    EXECUTE format('GRANT USAGE ON FOREIGN SERVER pgcapacity_shards, pgcapacity_proxy TO %I', app_role);
    EXECUTE format('GRANT SELECT ON capacity_cluster.pool_shards, capacity_cluster.code_shards TO %I',
                   app_role);
    FOR f IN
        SELECT p.oid::regprocedure AS signature
          FROM pg_proc AS p
         WHERE p.pronamespace IN ('capacity'::regnamespace, 'capacity_cluster'::regnamespace)
           AND p.proname NOT IN ('grant_app_access', 'grant_on_proxy')
    LOOP
        EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO %I', f.signature, app_role);
    END LOOP;
    FOR f IN SELECT c.oid::regclass AS view_name FROM pg_class AS c
              WHERE c.relnamespace = 'capacity'::regnamespace AND c.relkind IN ('v', 'm')
    LOOP
        EXECUTE format('GRANT SELECT ON %s TO %I', f.view_name, app_role);
    END LOOP;
    INSERT INTO capacity_cluster.app_roles (role_name) VALUES (app_role) ON CONFLICT DO NOTHING;
END
$$;
