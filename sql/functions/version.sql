-- The installed pgcapacity version (kept equal to the Python package version by a test).
CREATE OR REPLACE FUNCTION capacity.version()
RETURNS text
LANGUAGE sql IMMUTABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$ SELECT '0.1.0'::text $$;
