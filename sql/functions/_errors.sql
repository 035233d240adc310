-- Errors raised by more than one public function.
-- Not granted to application roles; they run with the caller's pinned search_path, so
-- every object is schema-qualified.

-- Raises CODE_NOT_FOUND for a normalised code.
CREATE OR REPLACE FUNCTION capacity._raise_code_not_found(v_code text)
RETURNS void
LANGUAGE plpgsql IMMUTABLE
AS $$
BEGIN
    RAISE EXCEPTION 'CODE_NOT_FOUND: code % does not exist', v_code
        USING ERRCODE = 'CP002', DETAIL = pg_catalog.jsonb_build_object('code', v_code)::text,
              HINT = 'Check the spelling, or create the code (capacity.upsert_codes, POST /v1/admin/codes).';
END
$$;

-- Raises CAPACITY_BELOW_USAGE for a redemption cap below the claims a code has admitted.
CREATE OR REPLACE FUNCTION capacity._raise_total_below_admitted(p_code text, p_total integer, p_max integer)
RETURNS void
LANGUAGE plpgsql IMMUTABLE
AS $$
BEGIN
    RAISE EXCEPTION 'CAPACITY_BELOW_USAGE: code % has admitted % claims; max_total_claims % would be below that',
                    p_code, p_total, p_max
        USING ERRCODE = 'CP009',
              DETAIL = pg_catalog.jsonb_build_object('code', p_code, 'total_claims', p_total,
                                                     'max_total_claims', p_max)::text,
              HINT = 'Raise max_total_claims: claims once admitted count for ever.';
END
$$;

-- Raises CAPACITY_BELOW_USAGE: max_uses would go below a code's current usage.
CREATE OR REPLACE FUNCTION capacity._raise_capacity_below_usage(p_code text, p_usage integer, p_max integer)
RETURNS void
LANGUAGE plpgsql IMMUTABLE
AS $$
BEGIN
    RAISE EXCEPTION 'CAPACITY_BELOW_USAGE: code % has % uses; max_uses % would be below that',
                    p_code, p_usage, p_max
        USING ERRCODE = 'CP009',
              DETAIL = pg_catalog.jsonb_build_object('code', p_code, 'usage_count', p_usage,
                                                     'max_uses', p_max)::text,
              HINT = 'Raise max_uses, or release or revoke claims first.';
END
$$;
