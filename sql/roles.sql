-- Least-privilege roles for pgcapacity. Run as the owner of the capacity schema (or a
-- superuser) after installing:
--
--   psql -v ON_ERROR_STOP=1 -v app_password='...' -f sql/roles.sql
--
-- pgcapacity_app may execute the public capacity functions and read the views; it has
-- no privilege on any table, so every write goes through the functions (which are
-- SECURITY DEFINER with a pinned search_path). Re-running this file is harmless, and
-- `pgcapacity migrate` renews the grants after every upgrade.
SELECT NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'pgcapacity_app') AS create_role \gset
\if :create_role
    CREATE ROLE pgcapacity_app LOGIN;
\endif
\if :{?app_password}
    ALTER ROLE pgcapacity_app PASSWORD :'app_password';
\endif
SELECT capacity.grant_app_access('pgcapacity_app');
