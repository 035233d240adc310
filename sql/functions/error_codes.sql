-- The single source of truth for pgcapacity errors: name, SQLSTATE, HTTP status, meaning.
-- `aliases` lists foreign SQLSTATEs that callers must report under the same name.
CREATE OR REPLACE FUNCTION capacity.error_codes()
RETURNS TABLE (name text, sqlstate text, http_status integer, description text, aliases text[])
LANGUAGE sql IMMUTABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    VALUES
        ('VALIDATION_ERROR',      'CP001', 400, 'The input is malformed: a bad code, holder, pool, number or JSON document.', '{}'::text[]),
        ('CODE_NOT_FOUND',        'CP002', 404, 'No code with this name exists.', '{}'),
        ('CODE_INACTIVE',         'CP003', 403, 'The code exists but is deactivated or revoked.', '{}'),
        ('CODE_EXPIRED',          'CP004', 410, 'The code is past its expires_at.', '{}'),
        ('CODE_FULL',             'CP005', 409, 'Every unit of the code is in use.', '{}'),
        ('HOLDER_LIMIT_EXCEEDED', 'CP006', 409, 'The holder already holds its maximum number of claims in this pool.', '{}'),
        ('CLAIM_NOT_FOUND',       'CP007', 404, 'No active claim matches this id (and token).', '{}'),
        ('LOCK_CONTENDED',        'CP008', 503, 'The code stayed locked, or a lock or serialization conflict ended the call; retry.', '{55P03,40P01,40001}'),
        ('CAPACITY_BELOW_USAGE',  'CP009', 409, 'A new limit would be below the units already in use.', '{}')
$$;
