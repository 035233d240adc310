-- The views' figures and the error table (the contract the HTTP layer maps from).
BEGIN;
SELECT plan(10);

SELECT lives_ok($$ SELECT capacity.upsert_codes('[{"code": "V10", "max_uses": 10}, {"code": "V0", "max_uses": 0}]') $$, 'fixture codes');
SELECT lives_ok($$ SELECT capacity.claim('V10', 'h' || i) FROM generate_series(1, 9) AS i $$, 'nine claims on V10');
SELECT results_eq(
    $$ SELECT usage_count, max_uses, remaining, utilisation, near_capacity, has_reached_limit, active_claims
         FROM capacity.code_usage WHERE code = 'V10' $$,
    $$ VALUES (9, 10, 1, 0.9000, true, false, 9) $$, 'code_usage at 90 %: near capacity, not full');
SELECT results_eq(
    $$ SELECT utilisation, near_capacity, has_reached_limit FROM capacity.code_usage WHERE code = 'V0' $$,
    $$ VALUES (1.0, true, true) $$, 'a zero-capacity code counts as full');
SELECT is_empty($$ SELECT * FROM capacity.code_usage WHERE usage_count <> active_claims $$,
                'code_usage: usage_count equals the counted active claims');
SELECT is((SELECT count(*)::integer FROM capacity.holder_usage WHERE active_claims = 1 AND max_claims IS NULL), 9,
          'holder_usage lists holders with an active claim');

SELECT results_eq($$ SELECT name, sqlstate, http_status FROM capacity.error_codes() WHERE sqlstate <= 'CP009' ORDER BY sqlstate $$,
    $$ VALUES ('VALIDATION_ERROR', 'CP001', 400), ('CODE_NOT_FOUND', 'CP002', 404), ('CODE_INACTIVE', 'CP003', 403),
              ('CODE_EXPIRED', 'CP004', 410), ('CODE_FULL', 'CP005', 409), ('HOLDER_LIMIT_EXCEEDED', 'CP006', 409),
              ('CLAIM_NOT_FOUND', 'CP007', 404), ('LOCK_CONTENDED', 'CP008', 503), ('CAPACITY_BELOW_USAGE', 'CP009', 409) $$,
    'error_codes() CP001-CP009 are exactly the contract''s table');
SELECT results_eq($$ SELECT name, sqlstate, http_status FROM capacity.error_codes() WHERE sqlstate > 'CP009' ORDER BY sqlstate $$,
    $$ VALUES ('UNAUTHORIZED', 'CP010', 401), ('FORBIDDEN', 'CP011', 403), ('NOT_FOUND', 'CP012', 404),
              ('METHOD_NOT_ALLOWED', 'CP013', 405), ('PAYLOAD_TOO_LARGE', 'CP014', 413),
              ('SERVICE_UNAVAILABLE', 'CP015', 503), ('INTERNAL_ERROR', 'CP016', 500),
              ('CODE_EXHAUSTED', 'CP017', 410), ('POOL_FULL', 'CP018', 409) $$,
    'error_codes() CP010-CP016 are the HTTP layer''s own errors, then CP017 on (CODE_EXHAUSTED, POOL_FULL)');
SELECT is((SELECT aliases FROM capacity.error_codes() WHERE name = 'LOCK_CONTENDED'), ARRAY['55P03', '40P01', '40001'],
          'lock, deadlock and serialization failures are reported as LOCK_CONTENDED');
SELECT is_empty($$ SELECT name FROM capacity.error_codes() WHERE coalesce(btrim(hint), '') = '' $$,
                'every error says what to do (hint)');

SELECT * FROM finish();
ROLLBACK;
