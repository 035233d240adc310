-- The trigger functions of capacity.codes (the triggers themselves are created by the
-- migrations that introduced them: 0002, 0005). Re-applied like every function file, so
-- this file is the current definition.

-- Format rules of capacity.codes, raised like the CHECK constraints they stand for: a
-- column-specific row trigger, which PostgreSQL does not fire for a usage update (the
-- usage update of every claim and release would otherwise rebuild five CHECKs it cannot
-- break; migration 0005).
CREATE OR REPLACE FUNCTION capacity._codes_validate()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_broken text;
BEGIN
    v_broken := CASE
        WHEN NEW.code !~ '^[A-Z0-9_-]{1,64}$' THEN 'codes_code_format'
        WHEN NEW.pool !~ '^[A-Za-z0-9_.-]{1,64}$' THEN 'codes_pool_format'
        WHEN jsonb_typeof(NEW.metadata) <> 'object' THEN 'codes_metadata_is_object'
        WHEN NEW.slots NOT BETWEEN 0 AND 256 THEN 'codes_slots_range'
    END;
    IF v_broken IS NOT NULL THEN
        RAISE EXCEPTION 'new row for relation "codes" violates check constraint "%"', v_broken
            USING ERRCODE = 'check_violation', CONSTRAINT = v_broken, TABLE = 'codes',
                  SCHEMA = 'capacity';
    END IF;
    RETURN NULL;
END
$$;

-- Change feed: appends one mark with the codes a statement inserted or deleted ({*} for
-- TRUNCATE), published later by capacity.publish_changes() (docs/architecture.md,
-- "Cache and change feed").
CREATE OR REPLACE FUNCTION capacity._codes_changed()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        INSERT INTO capacity.pending_changes (codes) VALUES ('{*}');
    ELSE
        INSERT INTO capacity.pending_changes (codes)
        SELECT array_agg(DISTINCT ch.code) FROM changed AS ch HAVING count(*) > 0;
    END IF;
    RETURN NULL;
END
$$;

-- Change feed: marks one updated code row (updates of what a status shows besides usage;
-- usage changes are marked by the functions that make them).
CREATE OR REPLACE FUNCTION capacity._code_row_changed()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    INSERT INTO capacity.pending_changes (codes)
    VALUES (CASE WHEN NEW.code = OLD.code THEN ARRAY[NEW.code] ELSE ARRAY[OLD.code, NEW.code] END);
    RETURN NULL;
END
$$;
