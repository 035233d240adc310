-- claim_wait(): claim() that waits for room instead of failing at once. (Its order among
-- concurrent waiters is tested with real connections: tests/sql/test_fair_waiting.py.)
BEGIN;
SELECT plan(14);

SELECT has_function('capacity', 'claim_wait',
                    ARRAY['text', 'text', 'interval', 'text', 'integer', 'interval'], 'claim_wait exists');
SELECT lives_ok($$ SELECT * FROM capacity.upsert_codes('[
    {"code": "ROOM", "max_uses": 2}, {"code": "ONE", "max_uses": 1},
    {"code": "CAPPED", "max_uses": 5, "pool": "small"}]') $$, 'fixture codes created');
SELECT results_eq($$ SELECT holder, units, already_held FROM capacity.claim_wait('room', 'ann', '5 seconds') $$,
                  $$ VALUES ('ann', 1, false) $$, 'a code with room: claimed at once, like claim()');
SELECT results_eq($$ SELECT already_held FROM capacity.claim_wait('ROOM', 'ann', '5 seconds') $$,
                  $$ VALUES (true) $$, 'idempotent per (code, holder)');
SELECT is((SELECT units FROM capacity.claim_wait('ROOM', 'bob', '0', 'nowait', 1, '1 hour')), 1,
          'every claim() argument is passed on');
SELECT lives_ok($$ SELECT capacity.claim('ONE', 'held') $$, 'ONE is full');
SELECT throws_ok($$ SELECT capacity.claim_wait('ONE', 'eve', '0') $$, 'CP005', NULL,
                 'a wait of 0 on a full code: CODE_FULL at once');
CREATE TEMP TABLE t0 AS SELECT clock_timestamp() AS at;
SELECT throws_ok($$ SELECT capacity.claim_wait('ONE', 'eve', '60 milliseconds') $$, 'CP005', NULL,
                 'a full code for the whole wait: CODE_FULL');
SELECT cmp_ok(clock_timestamp() - (SELECT at FROM t0), '>=', interval '60 milliseconds',
              'after waiting at least as long as asked');
SELECT lives_ok($$ SELECT capacity.set_pool_limit('small', 0) $$, 'pool small capped at 0');
SELECT throws_ok($$ SELECT capacity.claim_wait('CAPPED', 'eve', '20 milliseconds') $$, 'CP018', NULL,
                 'a full pool for the whole wait: POOL_FULL');
SELECT throws_ok($$ SELECT capacity.claim_wait('NOPE', 'eve', '1 second') $$, 'CP002', NULL,
                 'an unknown code: CODE_NOT_FOUND at once');
SELECT throws_ok($$ SELECT capacity.claim_wait('ONE', 'eve', '-1 second') $$, 'CP001',
                 'VALIDATION_ERROR: wait must be an interval from 0 to 1 hour, got -00:00:01', 'a negative wait');
SELECT throws_ok($$ SELECT capacity.claim_wait('ONE', 'eve', NULL) $$, 'CP001', NULL, 'a null wait');

SELECT * FROM finish();
ROLLBACK;
