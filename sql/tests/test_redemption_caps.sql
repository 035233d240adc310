-- Redemption caps: max_total_claims limits the claims a code admits over its whole life,
-- released or not, beside max_uses; CODE_EXHAUSTED once they are all admitted.
BEGIN;
SELECT plan(36);

SELECT lives_ok($$ SELECT * FROM capacity.upsert_codes('[
    {"code": "PROMO", "max_uses": 2, "max_total_claims": 3},
    {"code": "OPEN", "max_uses": 10, "pool": "reviews"},
    {"code": "HOT", "max_uses": 10, "slots": 4}]') $$, 'fixture codes created');
SELECT results_eq($$ SELECT max_total_claims, total_claims, remaining_total, can_claim FROM capacity.check('PROMO') $$,
                  $$ VALUES (3, 0, 3, true) $$, 'check reports the cap, none admitted yet');
SELECT results_eq($$ SELECT max_total_claims, total_claims, remaining_total FROM capacity.check('OPEN') $$,
                  $$ VALUES (NULL::integer, NULL::integer, NULL::integer) $$, 'an uncapped code reports nulls');

-- Released claims still count: three claims in all, whatever was given back.
CREATE TEMP TABLE a AS SELECT * FROM capacity.claim('PROMO', 'a');
SELECT is((SELECT released FROM capacity.release((SELECT claim_id FROM a))), true, 'a released');
CREATE TEMP TABLE b AS SELECT * FROM capacity.claim('PROMO', 'b');
SELECT is((SELECT released FROM capacity.release('PROMO', 'b')), true, 'b released');
SELECT is((SELECT usage_count FROM capacity.claim('PROMO', 'c')), 1, 'c claims with one unit in use');
SELECT results_eq($$ SELECT usage_count, total_claims, remaining_total, can_claim, reason FROM capacity.check('PROMO') $$,
                  $$ VALUES (1, 3, 0, false, 'CODE_EXHAUSTED') $$, 'check: exhausted though a unit is free');
SELECT throws_ok($$ SELECT capacity.claim('PROMO', 'd') $$, 'CP017',
                 'CODE_EXHAUSTED: code PROMO has admitted all of its 3 claims', 'a fourth claim: CODE_EXHAUSTED');
SELECT throws_ok($$ SELECT capacity.claim('PROMO', 'd', 'nowait') $$, 'CP017', NULL, 'in every lock mode');
SELECT is((SELECT total_claims FROM capacity.codes WHERE code = 'PROMO'), 3, 'a refused claim admits nothing');
SELECT results_eq($$ SELECT already_held, holder FROM capacity.claim('PROMO', 'c') $$, $$ VALUES (true, 'c') $$,
                  'the holder of a claim gets it back on an exhausted code');
SELECT is((SELECT total_claims FROM capacity.usage_batch(ARRAY['PROMO'])), 3, 'usage_batch reports total_claims');
SELECT is((SELECT reason FROM capacity.list_codes(search => 'PROMO')), 'CODE_EXHAUSTED', 'list_codes reports the reason');

-- Raising, lowering, removing the cap.
SELECT lives_ok($$ SELECT capacity.upsert_codes('[{"code": "PROMO", "max_uses": 2, "max_total_claims": 5}]') $$,
                'the cap raised to 5');
SELECT is((SELECT total_claims FROM capacity.codes WHERE code = 'PROMO'), 3, 'the count is kept');
SELECT is((SELECT units FROM capacity.claim('PROMO', 'd')), 1, 'a claim is admitted again');
SELECT throws_ok($$ SELECT capacity.upsert_codes('[{"code": "PROMO", "max_uses": 2, "max_total_claims": 3}]') $$,
                 'CP009', 'CAPACITY_BELOW_USAGE: code PROMO has admitted 4 claims; max_total_claims 3 would be below that',
                 'a cap below the claims admitted is refused');
SELECT lives_ok($$ SELECT capacity.upsert_codes('[{"code": "PROMO", "max_uses": 2, "max_total_claims": 4}]') $$,
                'a cap equal to the claims admitted is accepted');
SELECT lives_ok($$ SELECT capacity.upsert_codes('[{"code": "PROMO", "max_uses": 2}]') $$, 'an upsert without the key');
SELECT is((SELECT max_total_claims FROM capacity.codes WHERE code = 'PROMO'), 4, 'keeps the cap');
SELECT lives_ok($$ SELECT capacity.upsert_codes('[{"code": "PROMO", "max_uses": 2, "max_total_claims": null}]') $$,
                'the cap removed');
SELECT results_eq($$ SELECT max_total_claims, total_claims FROM capacity.codes WHERE code = 'PROMO' $$,
                  $$ VALUES (NULL::integer, NULL::integer) $$, 'no cap, no count');
SELECT lives_ok($$ SELECT capacity.release('PROMO', 'c'); SELECT capacity.claim('PROMO', 'e') $$,
                'claims are admitted without a cap');

-- A cap set on a code with claims counts the claims recorded, released or not.
SELECT lives_ok($$ SELECT capacity.claim('OPEN', 'o1'); SELECT capacity.claim('OPEN', 'o2');
                   SELECT capacity.release('OPEN', 'o1') $$, 'two claims on OPEN, one released');
SELECT throws_ok($$ SELECT capacity.upsert_codes('[{"code": "OPEN", "max_uses": 10, "pool": "reviews", "max_total_claims": 1}]') $$,
                 'CP009', NULL, 'a cap below the claims recorded is refused');
SELECT lives_ok($$ SELECT capacity.upsert_codes('[{"code": "OPEN", "max_uses": 10, "pool": "reviews", "max_total_claims": 3}]') $$,
                'a cap of 3 on OPEN');
SELECT is((capacity.check('OPEN')).remaining_total, 1, 'two of the three are spent already');

-- A refusal after the code row counted the claim (a holder limit) admits nothing.
SELECT lives_ok($$ SELECT capacity.set_holder_limit('reviews', 'capped', 0) $$, 'a holder with no claims allowed');
SELECT throws_ok($$ SELECT capacity.claim('OPEN', 'capped') $$, 'CP006', NULL, 'HOLDER_LIMIT_EXCEEDED');
SELECT is((SELECT total_claims FROM capacity.codes WHERE code = 'OPEN'), 2, 'the refused claim did not count');

-- A capped code counts on its row: never slotted.
SELECT throws_ok($$ SELECT capacity.upsert_codes('[{"code": "HOT", "max_uses": 10, "max_total_claims": 5}]') $$,
                 'CP001', 'VALIDATION_ERROR: code HOT cannot have both slots and max_total_claims',
                 'capping a slotted code is refused');
SELECT throws_ok($$ SELECT capacity.upsert_codes('[{"code": "OPEN", "max_uses": 10, "slots": 4}]') $$,
                 'CP001', NULL, 'slicing a capped code is refused');
SELECT is((SELECT count(*)::integer FROM capacity.tune_slots(min_claims => 1, slots => 4) WHERE code = 'OPEN'), 0,
          'tune_slots leaves a capped code plain, however hot');

-- Bad caps.
SELECT throws_ok($$ SELECT capacity.upsert_codes('[{"code": "X", "max_uses": 1, "max_total_claims": -1}]') $$,
                 'CP001', 'VALIDATION_ERROR: codes[0].max_total_claims must be an integer between 0 and 2147483647, or null',
                 'a negative cap is refused');
SELECT throws_ok($$ SELECT capacity.upsert_codes('[{"code": "X", "max_uses": 1, "max_total_claims": "3"}]') $$,
                 'CP001', NULL, 'a cap that is not a number is refused');

SELECT is_empty($$ SELECT * FROM capacity._invariant_violations() $$, 'every counter agrees with the claims');

SELECT * FROM finish();
ROLLBACK;
