-- check() and usage_batch(): status rows, reasons, input order, unknown codes.
BEGIN;
SELECT plan(18);

SELECT lives_ok($$ SELECT * FROM capacity.upsert_codes('[
    {"code": "A", "max_uses": 2, "pool": "p1"},
    {"code": "FULL", "max_uses": 1},
    {"code": "OFF", "max_uses": 1, "is_active": false},
    {"code": "GONE", "max_uses": 1, "expires_at": "2001-01-01T00:00:00Z"},
    {"code": "SLOTTED", "max_uses": 4, "slots": 2}]') $$, 'fixture codes');
SELECT lives_ok($$ SELECT capacity.claim('FULL', 'x') $$, 'fill FULL');

SELECT results_eq($$ SELECT code, found, pool, is_active, usage_count, max_uses, remaining, can_claim, reason
                       FROM capacity.check(' a ') $$,
                  $$ VALUES ('A', true, 'p1', true, 0, 2, 2, true, NULL::text) $$, 'check of a free code');
SELECT results_eq($$ SELECT found, can_claim, reason FROM capacity.check('FULL') $$,
                  $$ VALUES (true, false, 'CODE_FULL') $$, 'check of a full code gives reason CODE_FULL');
SELECT results_eq($$ SELECT reason FROM capacity.check('OFF') $$, $$ VALUES ('CODE_INACTIVE') $$, 'inactive reason');
SELECT results_eq($$ SELECT reason FROM capacity.check('GONE') $$, $$ VALUES ('CODE_EXPIRED') $$, 'expired reason');
SELECT results_eq($$ SELECT code, found, can_claim, reason FROM capacity.check('missing') $$,
                  $$ VALUES ('MISSING', false, false, 'CODE_NOT_FOUND') $$, 'check of an unknown code: found = false');
SELECT throws_ok($$ SELECT capacity.check('no spaces allowed') $$, 'CP001', NULL, 'check of a malformed code: VALIDATION_ERROR');

SELECT results_eq(
    $$ SELECT code, found, reason FROM capacity.usage_batch(ARRAY['full', 'missing', 'a', 'OFF', 'a']) $$,
    $$ VALUES ('FULL', true, 'CODE_FULL'), ('MISSING', false, 'CODE_NOT_FOUND'), ('A', true, NULL::text),
              ('OFF', true, 'CODE_INACTIVE'), ('A', true, NULL) $$,
    'usage_batch: one row per input code, in input order, duplicates kept');
SELECT is_empty($$ SELECT * FROM capacity.usage_batch(ARRAY[]::text[]) $$, 'usage_batch of no codes is empty');
SELECT throws_ok($$ SELECT * FROM capacity.usage_batch(ARRAY['A', 'bad code']) $$, 'CP001',
                 'VALIDATION_ERROR: codes[2] ''bad code'' is not a valid code', 'usage_batch names the malformed element');
SELECT throws_ok($$ SELECT * FROM capacity.usage_batch(NULL) $$, 'CP001', NULL, 'usage_batch(NULL): VALIDATION_ERROR');
SELECT throws_ok($$ SELECT * FROM capacity.usage_batch(ARRAY['A', NULL, 'bad code']) $$, 'CP001',
                 'VALIDATION_ERROR: codes[2] null is not a valid code', 'usage_batch names a null element first');
SELECT throws_ok($$ SELECT * FROM capacity.usage_batch('[0:1]={A,"bad code"}'::text[]) $$, 'CP001',
                 'VALIDATION_ERROR: codes[2] ''bad code'' is not a valid code',
                 'usage_batch counts positions from 1 whatever the array''s lower bound');

-- A slotted code's units live in its slot rows: both calls report the whole usage.
SELECT lives_ok($$ SELECT capacity.claim('SLOTTED', h) FROM unnest(ARRAY['s1', 's2', 's3']) AS h $$,
                'three units of SLOTTED taken');
SELECT results_eq(
    $$ SELECT code, usage_count, remaining, can_claim, reason FROM capacity.usage_batch(ARRAY['slotted'])
       UNION ALL
       SELECT code, usage_count, remaining, can_claim, reason FROM capacity.check('slotted') $$,
    $$ VALUES ('SLOTTED', 3, 1, true, NULL::text), ('SLOTTED', 3, 1, true, NULL) $$,
    'usage_batch and check count the units in slot rows');
SELECT lives_ok($$ SELECT capacity.claim('SLOTTED', 's4') $$, 'the last unit of SLOTTED taken');
SELECT results_eq($$ SELECT usage_count, remaining, reason FROM capacity.usage_batch(ARRAY['SLOTTED']) $$,
                  $$ VALUES (4, 0, 'CODE_FULL') $$, 'a slotted code with every unit taken: CODE_FULL in usage_batch');

SELECT * FROM finish();
ROLLBACK;
