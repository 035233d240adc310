-- Pool caps: set_pool_limit caps the units in use across all codes of a pool, beside each
-- code's max_uses and each holder's limit; POOL_FULL when a claim would pass it.
BEGIN;
SELECT plan(33);

SELECT has_function('capacity', 'set_pool_limit', ARRAY['text', 'integer'], 'set_pool_limit(pool, max_units) exists');
SELECT lives_ok($$ SELECT * FROM capacity.upsert_codes('[
    {"code": "ORG-A", "max_uses": 5, "pool": "org"},
    {"code": "ORG-B", "max_uses": 5, "pool": "org"},
    {"code": "ORG-HOT", "max_uses": 8, "pool": "org", "slots": 4},
    {"code": "ELSEWHERE", "max_uses": 5}]') $$, 'fixture codes created');
SELECT lives_ok($$ SELECT capacity.claim('ORG-A', 'early') $$, 'a claim before the cap');
SELECT lives_ok($$ SELECT capacity.set_pool_limit('org', 4) $$, 'a cap of 4 units on pool org');
SELECT results_eq($$ SELECT max_units, units_in_use, remaining, has_reached_limit FROM capacity.pool_usage WHERE pool = 'org' $$,
                  $$ VALUES (4, 1, 3, false) $$, 'pool_usage counts the claim made before the cap');
SELECT results_eq($$ SELECT max_units, units_in_use FROM capacity.pool_usage WHERE pool = 'default' $$,
                  $$ VALUES (NULL::integer, 0) $$, 'an uncapped pool reports a null cap');
SELECT is((SELECT sum(cap)::integer FROM capacity.pool_stripes WHERE pool = 'org'), 4, 'the stripes add up to the cap');

-- Units count across codes, plain and slotted, multi-unit included.
SELECT is((SELECT units FROM capacity.claim('ORG-B', 'b', units => 2)), 2, 'two units on ORG-B');
SELECT throws_ok($$ SELECT capacity.claim('ORG-HOT', 'h', units => 2) $$, 'CP018',
                 'POOL_FULL: pool org has 3/4 units in use, 2 units wanted', 'two more would pass the cap: POOL_FULL');
SELECT is((SELECT usage_count FROM capacity.check('ORG-HOT')), 0, 'the refused claim took nothing from its code');
SELECT is((SELECT count(*)::integer FROM capacity.claims WHERE holder = 'h'), 0, 'and recorded no claim');
SELECT is((SELECT units FROM capacity.claim('ORG-HOT', 'h')), 1, 'one unit on the slotted code fits');
SELECT throws_ok($$ SELECT capacity.claim('ORG-A', 'x') $$, 'CP018', NULL, 'the pool is full: POOL_FULL on a plain code');
SELECT throws_ok($$ SELECT capacity.claim('ORG-HOT', 'x', 'nowait') $$, 'CP018', NULL, 'on a slotted code, in every lock mode');
SELECT throws_ok($$ SELECT capacity.claim('ORG-B', 'x', 'wait') $$, 'CP018', NULL, 'and when waiting for row locks');
SELECT results_eq($$ SELECT already_held FROM capacity.claim('ORG-B', 'b') $$, $$ VALUES (true) $$,
                  'a holder gets its claim back on a full pool');
SELECT lives_ok($$ SELECT capacity.claim('ELSEWHERE', 'x') $$, 'other pools are not affected');
SELECT results_eq($$ SELECT name, http_status FROM capacity.error_codes() WHERE sqlstate = 'CP018' $$,
                  $$ VALUES ('POOL_FULL', 409) $$, 'POOL_FULL is CP018, HTTP 409');

-- Releases, expiries and revokes give units back to the pool.
SELECT is((SELECT released FROM capacity.release('ORG-B', 'b')), true, 'ORG-B released');
SELECT is((SELECT remaining FROM capacity.pool_usage WHERE pool = 'org'), 2, 'its two units are back');
SELECT is((SELECT units FROM capacity.claim('ORG-A', 'c', units => 2)), 2, 'and can be claimed on another code');
UPDATE capacity.claims SET last_seen_at = now() - interval '1 hour' WHERE holder = 'c';
SELECT is((SELECT expired FROM capacity.expire_idle_claims('1 minute')), 1, 'an idle claim expires');
SELECT is((SELECT units_in_use FROM capacity.pool_usage WHERE pool = 'org'), 2, 'and gives its units back');
SELECT is((SELECT claims_ended FROM capacity.revoke_code('ORG-HOT')), 1, 'a revoke ends the slotted claim');
SELECT is((SELECT units_in_use FROM capacity.pool_usage WHERE pool = 'org'), 1, 'and gives its unit back');

-- Fragmented room: free units spread over stripes are gathered for a larger claim.
SELECT lives_ok($$ SELECT capacity.set_pool_limit('org', 16) $$, 'the cap raised to 16 (4 stripes)');
SELECT is((SELECT count(*)::integer FROM capacity.pool_stripes WHERE pool = 'org'), 4, 'four stripes');
SELECT is((SELECT units FROM capacity.claim('ORG-B', 'big', units => 5)), 5, 'five units, more than one stripe holds');
SELECT is((SELECT count(*)::integer FROM capacity._invariant_violations()), 0, 'every counter agrees with the claims');

-- Limits below usage, bad input, removal.
SELECT throws_ok($$ SELECT capacity.set_pool_limit('org', 5) $$, 'CP009',
                 'CAPACITY_BELOW_USAGE: pool org has 6 units in use; max_units 5 would be below that',
                 'a cap below the units in use is refused');
SELECT throws_ok($$ SELECT capacity.set_pool_limit('org', -1) $$, 'CP001', NULL, 'a negative cap is VALIDATION_ERROR');
SELECT throws_ok($$ SELECT capacity.set_pool_limit('no pool!', 3) $$, 'CP001', NULL, 'a malformed pool is VALIDATION_ERROR');
SELECT lives_ok($$ SELECT capacity.set_pool_limit('org', NULL); SELECT capacity.claim('ORG-A', 'after', units => 4) $$,
                'the cap removed: claims are limited by their codes alone');

SELECT * FROM finish();
ROLLBACK;
