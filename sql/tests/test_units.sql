-- Multi-unit claims: all or nothing, counted as units everywhere, released whole; on
-- slotted codes, from one slot or across them when no slot alone has room.
BEGIN;
SELECT plan(30);

SELECT lives_ok($$ SELECT * FROM capacity.upsert_codes('[
    {"code": "SEATS", "max_uses": 6, "pool": "tour"},
    {"code": "HOT", "max_uses": 10, "slots": 4},
    {"code": "ZERO", "max_uses": 0}]') $$, 'fixture codes created');

CREATE TEMP TABLE group4 AS SELECT * FROM capacity.claim('SEATS', 'group-a', units => 4);
SELECT is((SELECT units FROM group4), 4, 'the claim holds 4 units');
SELECT is((SELECT usage_count FROM group4), 4, 'usage counts units');
SELECT is((SELECT remaining FROM group4), 2, 'two units remain');
SELECT is((SELECT (capacity.check('SEATS')).usage_count), 4, 'check counts units');
SELECT is((SELECT usage_count FROM capacity.usage_batch(ARRAY['SEATS'])), 4, 'usage_batch counts units');
SELECT is((SELECT usage_count FROM capacity.code_usage WHERE code = 'SEATS'), 4, 'code_usage counts units');
SELECT is((SELECT active_claims FROM capacity.code_usage WHERE code = 'SEATS'), 1, 'but it is one claim');
SELECT is((SELECT units FROM capacity.get_claim((SELECT claim_id FROM group4))), 4, 'get_claim shows the units');
SELECT is((SELECT units FROM capacity.list_claims(code => 'SEATS')), 4, 'list_claims shows the units');

SELECT results_eq(
    $$ SELECT claim_id, units, already_held FROM capacity.claim('SEATS', 'group-a', units => 1) $$,
    $$ SELECT claim_id, 4, true FROM group4 $$,
    'claiming again returns the claim held, whatever units says');
SELECT throws_ok($$ SELECT capacity.claim('SEATS', 'group-b', units => 3) $$, 'CP005',
                 'CODE_FULL: code SEATS has 4/6 uses, 3 units wanted', 'three units do not fit in two: CODE_FULL');
SELECT is((SELECT usage_count FROM capacity.codes WHERE code = 'SEATS'), 4, 'a refused claim takes nothing');
SELECT is((SELECT units FROM capacity.claim('SEATS', 'group-b', units => 2)), 2, 'two units fit exactly');
SELECT throws_ok($$ SELECT capacity.claim('SEATS', 'solo') $$, 'CP005', NULL, 'the code is now full');

SELECT results_eq(
    $$ SELECT released, usage_count, remaining FROM capacity.release((SELECT claim_id FROM group4)) $$,
    $$ VALUES (true, 2, 4) $$, 'a release gives all its units back');
SELECT is((SELECT units FROM capacity.events WHERE kind = 'released' ORDER BY event_id DESC LIMIT 1), 4,
          'the release event carries its units');

-- Bad units, and more units than the code has.
SELECT throws_ok($$ SELECT capacity.claim('SEATS', 'x', units => 0) $$, 'CP001',
                 'VALIDATION_ERROR: units must be at least 1, got 0', 'units 0 is refused');
SELECT throws_ok($$ SELECT capacity.claim('SEATS', 'x', units => NULL) $$, 'CP001', NULL, 'units null is refused');
SELECT throws_ok($$ SELECT capacity.claim('SEATS', 'x', units => 2147483647) $$, 'CP005', NULL,
                 'more units than max_uses is CODE_FULL, without overflow');
SELECT throws_ok($$ SELECT capacity.claim('ZERO', 'x', units => 2) $$, 'CP005', NULL, 'a zero-capacity code is full');

-- A slotted code: 10 units over 4 slots (caps 3, 3, 2, 2).
SELECT is((SELECT units FROM capacity.claim('HOT', 'h1', units => 3)), 3, 'three units from one slot');
SELECT ok((SELECT slot_id FROM capacity.claims WHERE holder = 'h1') IS NOT NULL, 'counted in a slot');
SELECT is((SELECT units FROM capacity.claim('HOT', 'h2', units => 3)), 3, 'three more');
-- 4 units free, at most 2 in any slot: taken across the slots, counted in the code row.
SELECT is((SELECT max(s.cap - s.used) FROM capacity.code_slots AS s
            JOIN capacity.codes AS c USING (code_id) WHERE c.code = 'HOT'), 2, 'no slot has 4 free');
CREATE TEMP TABLE wide AS SELECT * FROM capacity.claim('HOT', 'h3', units => 4);
SELECT is((SELECT usage_count FROM wide), 10, 'four units across the slots fill the code');
SELECT ok((SELECT slot_id FROM capacity.claims WHERE holder = 'h3' AND released_at IS NULL) IS NULL,
          'a claim across the slots is counted in the code row');
SELECT throws_ok($$ SELECT capacity.claim('HOT', 'h4') $$, 'CP005', NULL, 'the slotted code is full');
SELECT is((SELECT usage_count FROM capacity.release((SELECT claim_id FROM wide))), 6,
          'its release gives the four units back');
SELECT is_empty($$ SELECT * FROM capacity._invariant_violations() $$,
                'every counter agrees with the claims and their units');

SELECT * FROM finish();
ROLLBACK;
