-- The single source of truth for pgcapacity errors: name, SQLSTATE, HTTP status, meaning.
-- `aliases` lists foreign SQLSTATEs that callers must report under the same name.
-- CP010-CP016 are never raised by SQL: they are the HTTP layer's own failures, listed here
-- so that every error an HTTP client can see has one name, SQLSTATE and status.
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
        ('CAPACITY_BELOW_USAGE',  'CP009', 409, 'A new limit would be below the units already in use.', '{}'),
        ('UNAUTHORIZED',          'CP010', 401, 'HTTP: the bearer token is missing or unknown.', '{}'),
        ('FORBIDDEN',             'CP011', 403, 'HTTP: the token may not use this endpoint, or admin endpoints are disabled.', '{}'),
        ('NOT_FOUND',             'CP012', 404, 'HTTP: no such route.', '{}'),
        ('METHOD_NOT_ALLOWED',    'CP013', 405, 'HTTP: the route does not accept this method.', '{}'),
        ('PAYLOAD_TOO_LARGE',     'CP014', 413, 'HTTP: the request body is larger than PGCAPACITY_MAX_BODY_BYTES.', '{}'),
        ('SERVICE_UNAVAILABLE',   'CP015', 503, 'The database, the connection pool or a statement timeout stopped the call; nothing was changed; retry.', '{57014,57P01,57P02,57P03,08000,08001,08003,08004,08006}'),
        ('INTERNAL_ERROR',        'CP016', 500, 'An unexpected failure (a bug): the transaction was rolled back.', '{}')
$$;
