-- 0005: a claim and a release stop paying for checks and triggers they cannot fail.
--
-- Why (measured with pg_stat_statements, track = all; docs/benchmarks.md): PostgreSQL
-- rebuilds a table's CHECK constraint expressions for every INSERT/UPDATE statement, and
-- the statement-level change trigger captured a transition table for every update. The
-- one-row usage update of a claim cost 22 us, of which the five format CHECKs of
-- capacity.codes were 9 and the trigger 8; the same update without them costs 5.5 us.
--
-- * capacity.codes keeps its one CHECK that the usage update can break (0 <= usage_count
--   <= max_uses, which also implies max_uses >= 0). The format rules on code, pool,
--   metadata and slots are checked by a column-specific row trigger instead: PostgreSQL
--   does not fire it for an UPDATE that does not name those columns, i.e. a usage update.
--   A violation is the same SQLSTATE (23514) and constraint name as before.
-- * The change feed marks usage changes where they happen (claim, release, expiry,
--   reconcile append their own mark); the trigger fires only for updates of the columns
--   a status shows besides usage, and still for every INSERT, DELETE and TRUNCATE.
--   Writing usage_count by hand, outside pgcapacity's functions, is not announced.
-- * capacity.claims and capacity.holders lose the holder-length CHECK (holders are
--   validated by every function before they are written; the tables are not writable by
--   application roles); the holder's two count rules become one CHECK.

-- Format rules of capacity.codes, raised like the CHECK constraints they replace.
CREATE FUNCTION capacity._codes_validate()
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

ALTER TABLE capacity.codes
    DROP CONSTRAINT codes_code_format,
    DROP CONSTRAINT codes_pool_format,
    DROP CONSTRAINT codes_metadata_is_object,
    DROP CONSTRAINT codes_slots_range,
    DROP CONSTRAINT codes_max_uses_nonnegative;
CREATE TRIGGER codes_validate AFTER INSERT OR UPDATE OF code, pool, metadata, slots ON capacity.codes
    FOR EACH ROW EXECUTE FUNCTION capacity._codes_validate();

-- Marks one changed code row (updates of what a status shows besides usage).
CREATE FUNCTION capacity._code_row_changed()
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

DROP TRIGGER codes_changed_update ON capacity.codes;
CREATE TRIGGER codes_changed_update
    AFTER UPDATE OF code, pool, max_uses, is_active, expires_at, metadata, slots ON capacity.codes
    FOR EACH ROW EXECUTE FUNCTION capacity._code_row_changed();

ALTER TABLE capacity.claims DROP CONSTRAINT claims_holder_length;
ALTER TABLE capacity.holders
    DROP CONSTRAINT holders_holder_length,
    DROP CONSTRAINT holders_max_claims_nonnegative,
    DROP CONSTRAINT holders_active_within_limit,
    ADD CONSTRAINT holders_active_within_limit
        CHECK (active_claims >= 0 AND (max_claims IS NULL OR active_claims BETWEEN 0 AND max_claims));

-- Folded into capacity._finish_claim() (functions/_internal.sql).
DROP FUNCTION IF EXISTS capacity._count_holder_claim(text, text);
DROP FUNCTION IF EXISTS capacity._mark_changed(text);

-- Ended claims are found for retention by a BRIN range (released_at grows with time)
-- instead of a B-tree entry written by every release.
DROP INDEX capacity.claims_ended_at;
CREATE INDEX claims_ended_at ON capacity.claims USING brin (released_at);
