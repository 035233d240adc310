-- The single source of truth for pgcapacity errors: name, SQLSTATE, HTTP status, meaning,
-- and the hint that says what to do (a raised error may carry a more precise one).
-- `aliases` lists foreign SQLSTATEs that callers must report under the same name.
-- CP010-CP016 are never raised by SQL: they are the HTTP layer's own failures, listed here
-- so that every error an HTTP client can see has one name, SQLSTATE and status.
CREATE OR REPLACE FUNCTION capacity.error_codes()
RETURNS TABLE (name text, sqlstate text, http_status integer, description text, aliases text[],
               hint text)
LANGUAGE sql IMMUTABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    VALUES
        ('VALIDATION_ERROR',      'CP001', 400, 'The input is malformed: a bad code, holder, pool, number or JSON document.', '{}'::text[],
            'Correct the input named in DETAIL (field) and send it again.'),
        ('CODE_NOT_FOUND',        'CP002', 404, 'No code with this name exists.', '{}',
            'Check the spelling, or create the code (capacity.upsert_codes, POST /v1/admin/codes).'),
        ('CODE_INACTIVE',         'CP003', 403, 'The code exists but is deactivated or revoked.', '{}',
            'Reactivate the code with upsert_codes ("is_active": true), or use another code.'),
        ('CODE_EXPIRED',          'CP004', 410, 'The code is past its expires_at.', '{}',
            'Move expires_at later (or to null) with upsert_codes, or use another code.'),
        ('CODE_FULL',             'CP005', 409, 'Every unit of the code is in use.', '{}',
            'Retry after a claim is released or expired.'),
        ('HOLDER_LIMIT_EXCEEDED', 'CP006', 409, 'The holder already holds its maximum number of claims in this pool.', '{}',
            'Release one of the holder''s claims first.'),
        ('CLAIM_NOT_FOUND',       'CP007', 404, 'No active claim matches this id (and token).', '{}',
            'The claim was released, expired or revoked, or the token is wrong; claim again.'),
        ('LOCK_CONTENDED',        'CP008', 503, 'The code stayed locked, or a lock or serialization conflict ended the call; retry.', '{55P03,40P01,40001}',
            'Retry after a short, randomised delay; nothing was changed.'),
        ('CAPACITY_BELOW_USAGE',  'CP009', 409, 'A new limit would be below the units already in use.', '{}',
            'Raise the limit, or release or revoke claims first.'),
        ('UNAUTHORIZED',          'CP010', 401, 'HTTP: the bearer token is missing or unknown.', '{}',
            'Send Authorization: Bearer <token> with a client token or the admin token.'),
        ('FORBIDDEN',             'CP011', 403, 'HTTP: the token may not use this endpoint, or admin endpoints are disabled.', '{}',
            'Use the admin token (PGCAPACITY_ADMIN_TOKEN) for /v1/admin routes.'),
        ('NOT_FOUND',             'CP012', 404, 'HTTP: no such route.', '{}',
            'See /docs for the routes this API serves.'),
        ('METHOD_NOT_ALLOWED',    'CP013', 405, 'HTTP: the route does not accept this method.', '{}',
            'Use one of the methods in the Allow header.'),
        ('PAYLOAD_TOO_LARGE',     'CP014', 413, 'HTTP: the request body is larger than PGCAPACITY_MAX_BODY_BYTES.', '{}',
            'Send a smaller body (split a batch), or raise PGCAPACITY_MAX_BODY_BYTES.'),
        ('SERVICE_UNAVAILABLE',   'CP015', 503, 'The database, the connection pool or a statement timeout stopped the call; nothing was changed; retry.', '{57014,57P01,57P02,57P03,08000,08001,08003,08004,08006}',
            'Retry after the Retry-After delay; nothing was changed.'),
        ('INTERNAL_ERROR',        'CP016', 500, 'An unexpected failure (a bug): the transaction was rolled back.', '{}',
            'Report it with the server log; nothing was changed.'),
        ('CODE_EXHAUSTED',        'CP017', 410, 'The code has admitted all the claims its max_total_claims allows, ever.', '{}',
            'Raise max_total_claims with upsert_codes, or use another code.'),
        ('POOL_FULL',             'CP018', 409, 'Every unit the code''s pool may have in use (set_pool_limit) is in use.', '{}',
            'Retry after a claim in the pool is released or expired, or raise the pool''s limit.')
$$;
