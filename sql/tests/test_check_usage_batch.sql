-- check() and usage_batch(): status rows, reasons, input order, unknown codes.
BEGIN;
SELECT plan(12);

SELECT lives_ok($$ SELECT * FROM capacity.upsert_codes('[
    {"code": "A", "max_uses": 2, "pool": "p1"},
    {"code": "FULL", "max_uses": 1},
    {"code": "OFF", "max_uses": 1, "is_active": false},
    {"code": "GONE", "max_uses": 1, "expires_at": "2001-01-01T00:00:00Z"}]') $$, 'fixture codes');
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

SELECT * FROM finish();
ROLLBACK;
