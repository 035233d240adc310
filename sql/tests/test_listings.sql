-- Listing codes and claims, and looking up one claim: pages, filters, no tokens shown.
BEGIN;
SELECT plan(17);

SELECT lives_ok($$ SELECT capacity.upsert_codes('[
    {"code": "LIST-A1", "max_uses": 2, "pool": "rooms"},
    {"code": "LIST-A2", "max_uses": 1, "pool": "rooms"},
    {"code": "LIST-B1", "max_uses": 3, "pool": "desks", "slots": 2},
    {"code": "OTHER", "max_uses": 1, "pool": "desks", "is_active": false}]') $$, 'fixture codes');
SELECT lives_ok($$ SELECT capacity.claim('LIST-A1', 'ann'), capacity.claim('LIST-A2', 'ann'),
                          capacity.claim('LIST-B1', 'bob'), capacity.claim('LIST-B1', 'ann') $$,
                'four claims');

SELECT results_eq($$ SELECT code FROM capacity.list_codes() $$,
                  $$ VALUES ('LIST-A1'), ('LIST-A2'), ('LIST-B1'), ('OTHER') $$, 'every code, in code order');
SELECT results_eq($$ SELECT code, usage_count, remaining, can_claim, reason FROM capacity.list_codes(search => 'list-') $$,
                  $$ VALUES ('LIST-A1', 1, 1, true, NULL::text), ('LIST-A2', 1, 0, false, 'CODE_FULL'),
                            ('LIST-B1', 2, 1, true, NULL) $$,
                  'search is part of the code, case-insensitive; usage as check() reports it (slotted too)');
SELECT results_eq($$ SELECT code, reason FROM capacity.list_codes(pool => 'desks') $$,
                  $$ VALUES ('LIST-B1', NULL::text), ('OTHER', 'CODE_INACTIVE') $$, 'pool narrows to one pool');
SELECT results_eq($$ SELECT code FROM capacity.list_codes(page_size => 2) $$,
                  $$ VALUES ('LIST-A1'), ('LIST-A2') $$, 'a page');
SELECT results_eq($$ SELECT code FROM capacity.list_codes(after => 'list-a2', page_size => 2) $$,
                  $$ VALUES ('LIST-B1'), ('OTHER') $$, 'the next page starts past after');
SELECT throws_ok($$ SELECT * FROM capacity.list_codes(page_size => 1001) $$, 'CP001', NULL, 'page_size above 1000 is refused');
SELECT throws_ok($$ SELECT * FROM capacity.list_codes(pool => 'no pool!') $$, 'CP001', NULL, 'a malformed pool is refused');

SELECT results_eq($$ SELECT code, holder FROM capacity.list_claims(holder => 'ann') $$,
                  $$ VALUES ('LIST-A1', 'ann'), ('LIST-A2', 'ann'), ('LIST-B1', 'ann') $$,
                  'a holder''s active claims, in every pool, in claim order');
SELECT results_eq($$ SELECT holder FROM capacity.list_claims(code => 'list-b1') $$,
                  $$ VALUES ('bob'), ('ann') $$, 'a code''s active claims');
SELECT lives_ok($$ SELECT capacity.release('LIST-A1', 'ann') $$, 'ann releases LIST-A1');
SELECT results_eq($$ SELECT code FROM capacity.list_claims(holder => 'ann', page_size => 1) $$,
                  $$ VALUES ('LIST-A2') $$, 'ended claims are not listed; a page');
SELECT throws_ok($$ SELECT * FROM capacity.list_claims(code => 'NOPE') $$, 'CP002', NULL, 'claims of an unknown code: CODE_NOT_FOUND');

SELECT results_eq($$ SELECT code, holder, released_at IS NOT NULL, end_reason
                       FROM capacity.get_claim((SELECT min(claim_id) FROM capacity.claims)) $$,
                  $$ VALUES ('LIST-A1', 'ann', true, 'released'::capacity.end_reason) $$, 'one claim, ended ones too');
SELECT throws_ok($$ SELECT capacity.get_claim(-1) $$, 'CP007', NULL, 'an unknown claim: CLAIM_NOT_FOUND');
SELECT is((SELECT array_agg(attname::text ORDER BY attname) FROM pg_attribute
             WHERE attrelid = 'capacity.claim_info'::regclass AND attname IN ('holder', 'token')),
          ARRAY['holder'], 'a listed claim has its holder, not its token');

SELECT * FROM finish();
ROLLBACK;
