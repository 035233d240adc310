-- release() both forms, heartbeat(): idempotency, tokens, errors.
BEGIN;
SELECT plan(26);

SELECT lives_ok($$ SELECT * FROM capacity.upsert_codes('[{"code": "SEAT", "max_uses": 3, "pool": "seats"}]') $$,
                'fixture code');
CREATE TEMP TABLE a AS SELECT * FROM capacity.claim('SEAT', 'alice');
CREATE TEMP TABLE b AS SELECT * FROM capacity.claim('SEAT', 'bob');

SELECT results_eq($$ SELECT released, usage_count, remaining FROM capacity.release((SELECT claim_id FROM a)) $$,
                  $$ VALUES (true, 1, 2) $$, 'release by id gives the unit back');
SELECT results_eq($$ SELECT released, usage_count FROM capacity.release((SELECT claim_id FROM a)) $$,
                  $$ VALUES (false, 1) $$, 'a second release returns released = false and changes nothing');
SELECT is((SELECT end_reason::text FROM capacity.claims WHERE claim_id = (SELECT claim_id FROM a)), 'released',
          'the claim ended with reason released');
SELECT is((SELECT count(*)::integer FROM capacity.holder_usage WHERE pool = 'seats' AND holder = 'alice'), 0,
          'alice holds nothing any more (holder_usage)');
SELECT throws_ok($$ SELECT capacity.release((SELECT claim_id FROM b), gen_random_uuid()) $$, 'CP007', NULL,
                 'a wrong token raises CLAIM_NOT_FOUND (CP007)');
SELECT is((SELECT usage_count FROM capacity.codes WHERE code = 'SEAT'), 1, 'a wrong token changes nothing');
SELECT results_eq($$ SELECT released, usage_count FROM capacity.release((SELECT claim_id FROM b), (SELECT token FROM b)) $$,
                  $$ VALUES (true, 0) $$, 'the right token releases');
SELECT throws_ok($$ SELECT capacity.release(-1::bigint) $$, 'CP007', NULL, 'an unknown claim id raises CLAIM_NOT_FOUND');
SELECT throws_ok($$ SELECT capacity.release(NULL::bigint) $$, 'CP001', NULL, 'a null claim id raises VALIDATION_ERROR');

-- release(code, holder)
CREATE TEMP TABLE c AS SELECT * FROM capacity.claim('SEAT', 'carol');
SELECT results_eq($$ SELECT claim_id, released, usage_count FROM capacity.release('seat', 'carol') $$,
                  $$ SELECT claim_id, true, 0 FROM c $$, 'release by (code, holder) ends that holder''s claim');
SELECT results_eq($$ SELECT claim_id, released, usage_count FROM capacity.release('SEAT', 'carol') $$,
                  $$ VALUES (NULL::bigint, false, 0) $$, 'again: released = false, claim_id null');
SELECT results_eq($$ SELECT released FROM capacity.release('SEAT', 'nobody') $$,
                  $$ VALUES (false) $$, 'a holder without a claim: released = false');
SELECT throws_ok($$ SELECT capacity.release('NOPE', 'carol') $$, 'CP002', NULL, 'unknown code: CODE_NOT_FOUND');
SELECT throws_ok($$ SELECT capacity.release('bad code', 'carol') $$, 'CP001', NULL, 'malformed code: VALIDATION_ERROR');

-- A released claim id never releases a newer claim of the same holder.
CREATE TEMP TABLE a2 AS SELECT * FROM capacity.claim('SEAT', 'alice');
SELECT isnt((SELECT claim_id FROM a2), (SELECT claim_id FROM a), 'a new claim gets a new id');
SELECT is((SELECT released FROM capacity.release((SELECT claim_id FROM a))), false, 'the stale id releases nothing');
SELECT is((SELECT usage_count FROM capacity.codes WHERE code = 'SEAT'), 1, 'the newer claim still holds its unit');

-- heartbeat
UPDATE capacity.claims SET last_seen_at = now() - interval '1 hour' WHERE claim_id = (SELECT claim_id FROM a2);
SELECT is(capacity.heartbeat((SELECT claim_id FROM a2)), now(), 'heartbeat returns the new last_seen_at');
SELECT is((SELECT last_seen_at FROM capacity.claims WHERE claim_id = (SELECT claim_id FROM a2)), now(),
          'heartbeat refreshes last_seen_at');
SELECT lives_ok($$ SELECT capacity.heartbeat((SELECT claim_id FROM a2), (SELECT token FROM a2)) $$, 'heartbeat with the token');
-- (An earlier last_seen_at first: a heartbeat that writes the value already there is HOT anyway.)
UPDATE capacity.claims SET last_seen_at = now() - interval '1 hour' WHERE claim_id = (SELECT claim_id FROM a2);
CREATE TEMP TABLE updates_before AS
    SELECT n_tup_upd AS upd, n_tup_hot_upd AS hot
      FROM pg_stat_xact_user_tables WHERE relid = 'capacity.claims'::regclass;
SELECT lives_ok($$ SELECT capacity.heartbeat((SELECT claim_id FROM a2)) $$, 'one more heartbeat');
SELECT results_eq(
    $$ SELECT s.n_tup_upd - b.upd, s.n_tup_hot_upd - b.hot
         FROM pg_stat_xact_user_tables AS s, updates_before AS b
        WHERE s.relid = 'capacity.claims'::regclass $$,
    $$ VALUES (1::bigint, 1::bigint) $$,
    'a heartbeat is a HOT update: no claims index gets an entry (last_seen_at is not indexed)');
SELECT throws_ok($$ SELECT capacity.heartbeat((SELECT claim_id FROM a2), gen_random_uuid()) $$, 'CP007', NULL,
                 'heartbeat with a wrong token: CLAIM_NOT_FOUND');
SELECT throws_ok($$ SELECT capacity.heartbeat((SELECT claim_id FROM a)) $$, 'CP007', NULL,
                 'heartbeat of an ended claim: CLAIM_NOT_FOUND');
SELECT is((SELECT array_agg(kind::text ORDER BY event_id) FROM capacity.events WHERE code = 'SEAT'),
          ARRAY['claimed', 'claimed', 'released', 'released', 'claimed', 'released', 'claimed'],
          'every claim and release is in the event log, repeats are not');

SELECT * FROM finish();
ROLLBACK;
