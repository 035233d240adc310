-- Input rules shared by the public functions: code, holder, pool and lock mode
-- (pgcapacity/rules.py states the same rules for the HTTP layer; a test compares them).
-- Not granted to application roles; they run with the caller's pinned search_path, so
-- every object is schema-qualified.

-- Canonical form of a code: trimmed and upper-cased (lookups use the same form).
CREATE OR REPLACE FUNCTION capacity._normalise_code(raw text)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT pg_catalog.upper(pg_catalog.btrim(raw, E' \t\r\n')) $$;

-- Whether a normalised code is well-formed: 1-64 characters of A-Z, 0-9, "_" and "-".
-- ltrim over the allowed set, not a regular expression: half the CPU, and usage_batch
-- runs it once per code.
CREATE OR REPLACE FUNCTION capacity._is_code(normalised text)
RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT pg_catalog.char_length(normalised) BETWEEN 1 AND 64
       AND pg_catalog.ltrim(normalised, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-') = ''
$$;

-- Shortens user input before it is echoed in an error message.
CREATE OR REPLACE FUNCTION capacity._quote_input(raw text)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT CASE WHEN raw IS NULL THEN 'null'
                WHEN pg_catalog.char_length(raw) > 70
                    THEN pg_catalog.quote_literal(pg_catalog.left(raw, 67) || '...')
                ELSE pg_catalog.quote_literal(raw) END
$$;

-- Validates and normalises a code, raising VALIDATION_ERROR when it is malformed.
CREATE OR REPLACE FUNCTION capacity._require_code(raw text, field text DEFAULT 'code')
RETURNS text
LANGUAGE plpgsql IMMUTABLE
AS $$
DECLARE
    v_code text := capacity._normalise_code(raw);
BEGIN
    IF v_code IS NULL OR NOT capacity._is_code(v_code) THEN
        RAISE EXCEPTION 'VALIDATION_ERROR: % % is not a valid code', field, capacity._quote_input(raw)
            USING ERRCODE = 'CP001',
                  DETAIL = pg_catalog.jsonb_build_object('field', field)::text,
                  HINT = 'A code is 1-64 characters of A-Z, 0-9, "_" and "-" (trimmed, case-insensitive).';
    END IF;
    RETURN v_code;
END
$$;

-- Validates a holder: 1-256 characters, no control characters.
CREATE OR REPLACE FUNCTION capacity._require_holder(raw text)
RETURNS text
LANGUAGE plpgsql IMMUTABLE
AS $$
BEGIN
    IF raw IS NULL OR pg_catalog.char_length(raw) NOT BETWEEN 1 AND 256 OR raw ~ '[[:cntrl:]]'
       OR raw !~ '[^[:space:]]' THEN
        RAISE EXCEPTION 'VALIDATION_ERROR: holder % is not valid', capacity._quote_input(raw)
            USING ERRCODE = 'CP001',
                  DETAIL = pg_catalog.jsonb_build_object('field', 'holder')::text,
                  HINT = 'A holder is 1-256 characters of text, not only spaces, without control characters.';
    END IF;
    RETURN raw;
END
$$;

-- Validates a pool name: 1-64 characters of letters, digits, "_", "-" and ".".
CREATE OR REPLACE FUNCTION capacity._require_pool(raw text)
RETURNS text
LANGUAGE plpgsql IMMUTABLE
AS $$
BEGIN
    IF raw IS NULL OR raw !~ '^[A-Za-z0-9_.-]{1,64}$' THEN
        RAISE EXCEPTION 'VALIDATION_ERROR: pool % is not valid', capacity._quote_input(raw)
            USING ERRCODE = 'CP001',
                  DETAIL = pg_catalog.jsonb_build_object('field', 'pool')::text,
                  HINT = 'A pool is 1-64 characters of letters, digits, "_", "-" and ".".';
    END IF;
    RETURN raw;
END
$$;

-- Validates a lock mode name.
CREATE OR REPLACE FUNCTION capacity._require_lock_mode(raw text)
RETURNS text
LANGUAGE plpgsql IMMUTABLE
AS $$
BEGIN
    IF raw IS NULL OR raw NOT IN ('wait', 'nowait', 'advisory') THEN
        RAISE EXCEPTION 'VALIDATION_ERROR: lock_mode % is not valid', capacity._quote_input(raw)
            USING ERRCODE = 'CP001',
                  DETAIL = pg_catalog.jsonb_build_object('field', 'lock_mode')::text,
                  HINT = 'Use one of wait, nowait, advisory.';
    END IF;
    RETURN raw;
END
$$;

-- Validates the page size of a listing: 1-1000 rows.
CREATE OR REPLACE FUNCTION capacity._require_page_size(page_size integer)
RETURNS integer
LANGUAGE plpgsql IMMUTABLE
AS $$
BEGIN
    IF page_size IS NULL OR page_size NOT BETWEEN 1 AND 1000 THEN
        RAISE EXCEPTION 'VALIDATION_ERROR: page_size must be between 1 and 1000, got %',
                        COALESCE(page_size::text, 'null')
            USING ERRCODE = 'CP001',
                  DETAIL = pg_catalog.jsonb_build_object('field', 'page_size')::text,
                  HINT = 'Ask for at most 1000 rows a page, and pass the last row''s key as after for the next.';
    END IF;
    RETURN page_size;
END
$$;

-- A JSON number as an integer from 0 to p_max, else VALIDATION_ERROR naming p_field
-- (p_or_else ends the message, such as ', or null', where the caller accepts more).
CREATE OR REPLACE FUNCTION capacity._json_integer(p_value jsonb, p_field text, p_max integer, p_hint text,
                                                  p_or_else text DEFAULT '')
RETURNS integer
LANGUAGE plpgsql IMMUTABLE
AS $$
BEGIN
    IF pg_catalog.jsonb_typeof(p_value) IS DISTINCT FROM 'number' OR (p_value #>> '{}') !~ '^[0-9]{1,10}$'
       OR (p_value #>> '{}')::bigint > p_max THEN
        RAISE EXCEPTION 'VALIDATION_ERROR: % must be an integer between 0 and %', p_field, p_max || p_or_else
            USING ERRCODE = 'CP001', DETAIL = pg_catalog.jsonb_build_object('field', p_field)::text,
                  HINT = p_hint;
    END IF;
    RETURN (p_value #>> '{}')::integer;
END
$$;
