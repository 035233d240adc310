-- Fencing: claim results carry a fence that rises with every grant on a code; assert_held
-- answers only for a claim still held, with its token, within its lease.
BEGIN;
SELECT plan(10);

SELECT lives_ok($$ SELECT * FROM capacity.upsert_codes('[{"code": "DOOR", "max_uses": 1}]') $$, 'fixture code');
CREATE TEMP TABLE first AS SELECT * FROM capacity.claim('DOOR', 'a', lease => '1 minute');
SELECT is((SELECT fence FROM first), (SELECT claim_id FROM first), 'the fence is the claim''s place in the grant order');
SELECT is(capacity.assert_held((SELECT claim_id FROM first), (SELECT token FROM first)), (SELECT fence FROM first),
          'assert_held returns the fence of a held claim');
SELECT is(capacity.assert_held((SELECT claim_id FROM first)), (SELECT fence FROM first), 'without a token too');
SELECT throws_ok(format('SELECT capacity.assert_held(%s, %L)', (SELECT claim_id FROM first), gen_random_uuid()),
                 'CP007', NULL, 'another token: CLAIM_NOT_FOUND');
SELECT throws_ok($$ SELECT capacity.assert_held(-1) $$, 'CP007', NULL, 'no such claim: CLAIM_NOT_FOUND');

UPDATE capacity.claims SET lease_expires_at = clock_timestamp() - interval '1 second'
 WHERE claim_id = (SELECT claim_id FROM first);
SELECT throws_ok(format('SELECT capacity.assert_held(%s)', (SELECT claim_id FROM first)), 'CP007',
                 NULL, 'past its lease, not yet ended: CLAIM_NOT_FOUND');
UPDATE capacity.claims SET lease_expires_at = now() - interval '1 second'
 WHERE claim_id = (SELECT claim_id FROM first);
CREATE TEMP TABLE second AS SELECT * FROM capacity.claim('DOOR', 'b');
SELECT ok((SELECT fence FROM second) > (SELECT fence FROM first), 'the next holder''s fence is larger');
SELECT throws_ok(format('SELECT capacity.assert_held(%s)', (SELECT claim_id FROM first)), 'CP007',
                 'CLAIM_NOT_FOUND: claim ' || (SELECT claim_id FROM first) || ' is not held (ended, past its lease, or another token)',
                 'the zombie''s assert_held fails');
SELECT lives_ok(format('SELECT capacity.release(%s); SELECT capacity.claim(''DOOR'', ''c'')', (SELECT claim_id FROM second)),
                'released and claimed again');

SELECT * FROM finish();
ROLLBACK;
