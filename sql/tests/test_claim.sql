-- claim(): success, idempotency, normalisation, every refusal with its SQLSTATE.
BEGIN;
SELECT plan(36);

SELECT lives_ok($$ SELECT * FROM capacity.upsert_codes('[
    {"code": "class-7a", "max_uses": 2},
    {"code": "CLOSED", "max_uses": 5, "is_active": false},
    {"code": "OLD", "max_uses": 5, "expires_at": "2000-01-01T00:00:00Z"},
    {"code": "ZERO", "max_uses": 0}]') $$, 'fixture codes created');

CREATE TEMP TABLE first AS SELECT * FROM capacity.claim('class-7a', 'alice');
SELECT is((SELECT code FROM first), 'CLASS-7A', 'the code comes back normalised');
SELECT is((SELECT holder FROM first), 'alice', 'the holder comes back');
SELECT is((SELECT usage_count FROM first), 1, 'usage is 1 after the first claim');
SELECT is((SELECT remaining FROM first), 1, 'one unit remains');
SELECT is((SELECT already_held FROM first), false, 'a new claim is not already_held');
SELECT isnt((SELECT token FROM first), NULL, 'a claim has a token');

SELECT results_eq(
    $$ SELECT claim_id, token, usage_count, already_held FROM capacity.claim('  Class-7A ', 'alice') $$,
    $$ SELECT claim_id, token, 1, true FROM first $$,
    'claiming again (any spelling of the code) returns the same claim and uses no unit');
SELECT is((SELECT usage_count FROM capacity.codes WHERE code = 'CLASS-7A'), 1, 'usage unchanged by the repeat');

SELECT is((SELECT usage_count FROM capacity.claim('CLASS-7A', 'bob', 'nowait')), 2, 'nowait mode claims');
SELECT throws_ok($$ SELECT capacity.claim('CLASS-7A', 'carol', 'wait') $$, 'CP005',
                 'CODE_FULL: code CLASS-7A has 2/2 uses', 'a full code raises CODE_FULL (CP005)');
SELECT is((SELECT already_held FROM capacity.claim('CLASS-7A', 'bob')), true,
          'a holder of a full code still gets its claim back');
SELECT throws_ok($$ SELECT capacity.claim('NOPE', 'alice') $$, 'CP002',
                 'CODE_NOT_FOUND: code NOPE does not exist', 'an unknown code raises CODE_NOT_FOUND (CP002)');
SELECT throws_ok($$ SELECT capacity.claim('CLOSED', 'alice') $$, 'CP003',
                 'CODE_INACTIVE: code CLOSED is not active', 'an inactive code raises CODE_INACTIVE (CP003)');
SELECT throws_like($$ SELECT capacity.claim('OLD', 'alice') $$, 'CODE_EXPIRED: code OLD expired at %',
                   'an expired code raises CODE_EXPIRED');
SELECT throws_ok($$ SELECT capacity.claim('OLD', 'alice') $$, 'CP004', NULL, 'CODE_EXPIRED is CP004');
SELECT throws_ok($$ SELECT capacity.claim('ZERO', 'alice') $$, 'CP005', NULL, 'a zero-capacity code is full');

-- Validation (CP001): codes, holders, lock modes.
SELECT throws_ok($$ SELECT capacity.claim('bad code', 'alice') $$, 'CP001', NULL, 'a code with a space is refused');
SELECT throws_ok($$ SELECT capacity.claim('', 'alice') $$, 'CP001', NULL, 'an empty code is refused');
SELECT throws_ok($$ SELECT capacity.claim(NULL, 'alice') $$, 'CP001', NULL, 'a null code is refused');
SELECT throws_ok($$ SELECT capacity.claim(repeat('A', 65), 'alice') $$, 'CP001', NULL, 'a 65-character code is refused');
SELECT throws_ok($$ SELECT capacity.claim('CLASS-7A', '') $$, 'CP001', NULL, 'an empty holder is refused');
SELECT throws_ok($$ SELECT capacity.claim('CLASS-7A', NULL) $$, 'CP001', NULL, 'a null holder is refused');
SELECT throws_ok($$ SELECT capacity.claim('CLASS-7A', '   ') $$, 'CP001', NULL, 'a holder of spaces only is refused');
SELECT throws_ok($$ SELECT capacity.claim('CLASS-7A', repeat('h', 257)) $$, 'CP001', NULL, 'a 257-character holder is refused');
SELECT throws_ok($$ SELECT capacity.claim('CLASS-7A', E'bad\nholder') $$, 'CP001', NULL, 'a holder with a control character is refused');
SELECT throws_ok($$ SELECT capacity.claim('CLASS-7A', 'x', 'fast') $$, 'CP001',
                 'VALIDATION_ERROR: lock_mode ''fast'' is not valid', 'an unknown lock mode is refused');

SELECT lives_ok($$ SELECT * FROM capacity.upsert_codes('[{"code": "BIG", "max_uses": 10}]') $$, 'a second code');
SELECT is((SELECT usage_count FROM capacity.claim('BIG', repeat('h', 256), 'advisory')), 1,
          'a 256-character holder is accepted (advisory mode)');
SELECT is((SELECT usage_count FROM capacity.claim(code => 'BIG', holder => 'named', lock_mode => 'wait')), 2,
          'named arguments work');

-- The claim is recorded: claim row, the holder's active claims, event.
SELECT is((SELECT count(*)::integer FROM capacity.claims WHERE released_at IS NULL AND code_id =
           (SELECT code_id FROM capacity.codes WHERE code = 'CLASS-7A')), 2, 'two active claim rows on CLASS-7A');
SELECT is((SELECT active_claims FROM capacity.holder_usage WHERE pool = 'default' AND holder = 'alice'), 1,
          'alice holds 1 claim (holder_usage)');
SELECT is((SELECT count(*)::integer FROM capacity.holders), 0,
          'holders without a limit get no counter row');
SELECT is((SELECT count(*)::integer FROM capacity.events WHERE kind = 'claimed' AND code = 'CLASS-7A'), 2,
          'one claimed event per new claim, none for repeats');
SELECT is((SELECT usage_after FROM capacity.events WHERE kind = 'claimed' AND holder = 'bob'), 2,
          'events record usage after the claim');
SELECT is((SELECT count(*)::integer FROM capacity.reconcile()), 0, 'no drift');

SELECT * FROM finish();
ROLLBACK;
