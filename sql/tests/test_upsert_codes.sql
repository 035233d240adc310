-- upsert_codes(): batch create and update, partial updates, every validation error.
BEGIN;
SELECT plan(22);

SELECT results_eq($$ SELECT inserted, updated FROM capacity.upsert_codes('[
        {"code": "b", "max_uses": 2},
        {"code": "a", "max_uses": 5, "pool": "classroom", "metadata": {"teacher": "kim"},
         "expires_at": "2999-01-01T00:00:00Z"}]') $$,
    $$ VALUES (2, 0) $$, 'two new codes are inserted');
SELECT results_eq($$ SELECT code, pool, max_uses, is_active, metadata FROM capacity.codes ORDER BY code $$,
    $$ VALUES ('A', 'classroom', 5, true, '{"teacher": "kim"}'::jsonb), ('B', 'default', 2, true, '{}') $$,
    'stored normalised, with defaults for absent fields');
SELECT results_eq($$ SELECT inserted, updated FROM capacity.upsert_codes('[
        {"code": "A", "max_uses": 7}, {"code": "C", "max_uses": 1}]') $$,
    $$ VALUES (1, 1) $$, 'one updated, one inserted');
SELECT results_eq($$ SELECT max_uses, pool, metadata, expires_at FROM capacity.codes WHERE code = 'A' $$,
    $$ VALUES (7, 'classroom', '{"teacher": "kim"}'::jsonb, '2999-01-01T00:00:00Z'::timestamptz) $$,
    'absent optional keys keep their stored values');
SELECT lives_ok($$ SELECT capacity.upsert_codes('[{"code": "A", "max_uses": 7, "expires_at": null, "is_active": false}]') $$,
    'explicit null and false are applied');
SELECT results_eq($$ SELECT expires_at, is_active FROM capacity.codes WHERE code = 'A' $$,
    $$ VALUES (NULL::timestamptz, false) $$, 'expires_at cleared, code deactivated');
SELECT results_eq($$ SELECT inserted, updated FROM capacity.upsert_codes('[]') $$, $$ VALUES (0, 0) $$,
    'an empty batch does nothing');

-- Capacity below usage is refused, and the whole batch is left untouched.
SELECT lives_ok($$ SELECT capacity.claim('B', 'u1'), capacity.claim('B', 'u2') $$, 'B is used twice');
SELECT throws_ok($$ SELECT capacity.upsert_codes('[{"code": "C", "max_uses": 9}, {"code": "B", "max_uses": 1}]') $$,
    'CP009', 'CAPACITY_BELOW_USAGE: code B has 2 uses; max_uses 1 would be below that',
    'max_uses below usage raises CAPACITY_BELOW_USAGE (CP009)');
SELECT results_eq($$ SELECT code, max_uses FROM capacity.codes WHERE code IN ('B', 'C') ORDER BY code $$,
    $$ VALUES ('B', 2), ('C', 1) $$, 'nothing of the refused batch was applied');
SELECT lives_ok($$ SELECT capacity.upsert_codes('[{"code": "B", "max_uses": 2}]') $$, 'max_uses equal to usage is fine');

-- Validation: every malformed element is named.
SELECT throws_ok($$ SELECT capacity.upsert_codes('{"code": "A"}') $$, 'CP001',
    'VALIDATION_ERROR: codes must be a JSON array of objects', 'not an array');
SELECT throws_ok($$ SELECT capacity.upsert_codes(NULL) $$, 'CP001', NULL, 'null');
SELECT throws_ok($$ SELECT capacity.upsert_codes('[1]') $$, 'CP001', 'VALIDATION_ERROR: codes[0] must be an object', 'element not an object');
SELECT throws_ok($$ SELECT capacity.upsert_codes('[{"max_uses": 1}]') $$, 'CP001', 'VALIDATION_ERROR: codes[0].code must be a string', 'missing code');
SELECT throws_ok($$ SELECT capacity.upsert_codes('[{"code": "OK", "max_uses": 1}, {"code": "no way", "max_uses": 1}]') $$, 'CP001',
    'VALIDATION_ERROR: codes[1].code ''no way'' is not a valid code', 'malformed code, with its index');
SELECT throws_ok($$ SELECT capacity.upsert_codes('[{"code": "X", "max_uses": 1.5}]') $$, 'CP001', NULL, 'fractional max_uses');
SELECT throws_ok($$ SELECT capacity.upsert_codes('[{"code": "X", "max_uses": "3"}]') $$, 'CP001', NULL, 'max_uses as a string');
SELECT throws_ok($$ SELECT capacity.upsert_codes('[{"code": "X", "max_uses": 3000000000}]') $$, 'CP001', NULL, 'max_uses beyond int4');
SELECT throws_ok($$ SELECT capacity.upsert_codes('[{"code": "X", "max_uses": 1, "pool": "has space"}]') $$, 'CP001', NULL, 'bad pool');
SELECT throws_ok($$ SELECT capacity.upsert_codes('[{"code": "X", "max_uses": 1}, {"code": " x ", "max_uses": 2}]') $$, 'CP001',
    'VALIDATION_ERROR: code X appears more than once in codes', 'duplicate codes (after normalisation)');
SELECT is((SELECT count(*)::integer FROM capacity.codes WHERE code IN ('X', 'OK')), 0, 'refused batches created nothing');

SELECT * FROM finish();
ROLLBACK;
