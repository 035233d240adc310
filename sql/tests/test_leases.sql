-- Leases: from the claim or the code's default, renewed by heartbeats, ended by the
-- expiry function or lazily by a claim that needs the room; never resurrected.
-- (A lease lapses here by moving lease_expires_at into the past: now() is fixed in a
-- transaction.)
BEGIN;
SELECT plan(46);

SELECT lives_ok($$ SELECT * FROM capacity.upsert_codes('[
    {"code": "PLAIN", "max_uses": 5},
    {"code": "LEASED", "max_uses": 2, "lease": "10 minutes"},
    {"code": "SLOTS", "max_uses": 4, "slots": 2, "lease": "1 minute"}]') $$, 'fixture codes created');
SELECT is((SELECT lease FROM capacity.codes WHERE code = 'LEASED'), interval '10 minutes',
          'upsert_codes stores the default lease');


-- A lease from the claim, from the code, or none.
CREATE TEMP TABLE a AS SELECT * FROM capacity.claim('PLAIN', 'a', lease => '5 minutes');
SELECT is((SELECT lease_expires_at FROM a), now() + interval '5 minutes', 'a lease given to claim()');
SELECT is((SELECT lease_expires_at FROM capacity.claim('PLAIN', 'b')), NULL, 'no lease without one');
CREATE TEMP TABLE x AS SELECT * FROM capacity.claim('LEASED', 'x');
SELECT is((SELECT lease_expires_at FROM x), now() + interval '10 minutes', 'the code''s default lease');
CREATE TEMP TABLE y AS SELECT * FROM capacity.claim('LEASED', 'y', lease => '30 seconds');
SELECT is((SELECT lease_expires_at FROM y), now() + interval '30 seconds', 'a lease given overrides the default');
SELECT is((SELECT lease_expires_at FROM capacity.get_claim((SELECT claim_id FROM x))),
          now() + interval '10 minutes', 'get_claim shows lease_expires_at');
SELECT is((SELECT lease_expires_at FROM capacity.list_claims(code => 'LEASED') WHERE holder = 'y'),
          now() + interval '30 seconds', 'list_claims shows lease_expires_at');
SELECT is((SELECT lease_expires_at FROM capacity.claim('LEASED', 'x', lease => '1 hour')),
          now() + interval '10 minutes', 'claiming again returns the claim held, lease unchanged');

-- A heartbeat renews the lease by its length.
UPDATE capacity.claims SET lease_expires_at = now() + interval '1 second' WHERE claim_id = (SELECT claim_id FROM x);
SELECT lives_ok(format('SELECT capacity.heartbeat(%s)', (SELECT claim_id FROM x)), 'heartbeat of a leased claim');
SELECT is((SELECT lease_expires_at FROM capacity.claims WHERE claim_id = (SELECT claim_id FROM x)),
          now() + interval '10 minutes', 'the heartbeat renewed the lease');

-- A lapsed claim still counts until something ends it; a claim that needs its room ends it.
SELECT throws_ok($$ SELECT capacity.claim('LEASED', 'z') $$, 'CP005', NULL, 'LEASED is full');
UPDATE capacity.claims SET lease_expires_at = now() - interval '1 second' WHERE claim_id IN (SELECT claim_id FROM x);
SELECT is((capacity.check('LEASED')).usage_count, 2, 'check counts a lapsed claim until it ends');
CREATE TEMP TABLE z AS SELECT * FROM capacity.claim('LEASED', 'z');
SELECT results_eq($$ SELECT usage_count, already_held FROM z $$, $$ VALUES (2, false) $$,
                  'a code full only of lapsed claims admits a claim at once');
SELECT results_eq($$ SELECT released_at IS NOT NULL, end_reason::text FROM capacity.claims
                      WHERE claim_id = (SELECT claim_id FROM x) $$,
                  $$ VALUES (true, 'expired') $$, 'the lapsed claim ended as expired');
SELECT is((SELECT kind::text FROM capacity.events WHERE claim_id = (SELECT claim_id FROM x)
            ORDER BY event_id DESC LIMIT 1), 'expired', 'its event says expired');
SELECT is((SELECT claim_id FROM capacity.claims WHERE code_id = (SELECT code_id FROM capacity.codes WHERE code = 'LEASED')
            AND holder = 'y' AND released_at IS NULL), (SELECT claim_id FROM y),
          'only as many lapsed claims end as the claim needs (y was live)');

-- Nothing renews or releases a lapsed claim.
SELECT throws_ok(format('SELECT capacity.heartbeat(%s)', (SELECT claim_id FROM x)), 'CP007', NULL,
                 'heartbeat of an expired claim: CLAIM_NOT_FOUND');
SELECT is((SELECT released FROM capacity.release((SELECT claim_id FROM x))), false,
          'release of an expired claim: released = false');
UPDATE capacity.claims SET lease_expires_at = now() - interval '1 second' WHERE claim_id IN (SELECT claim_id FROM y);
SELECT throws_ok(format('SELECT capacity.heartbeat(%s)', (SELECT claim_id FROM y)), 'CP007', NULL,
                 'heartbeat of a lapsed claim not yet ended: CLAIM_NOT_FOUND');
SELECT is((SELECT lease_expires_at < now() FROM capacity.claims WHERE claim_id = (SELECT claim_id FROM y)), true,
          'and it did not renew it');
SELECT results_eq(format('SELECT released, usage_count FROM capacity.release(%s)', (SELECT claim_id FROM y)),
                  $$ VALUES (false, 1) $$, 'release of a lapsed claim: released = false, its unit back');
SELECT is((SELECT end_reason::text FROM capacity.claims WHERE claim_id = (SELECT claim_id FROM y)), 'expired',
          'it ended as expired, not released');
UPDATE capacity.claims SET lease_expires_at = now() - interval '1 second' WHERE claim_id IN (SELECT claim_id FROM z);
SELECT results_eq($$ SELECT released, claim_id IS NULL FROM capacity.release('LEASED', 'z') $$,
                  $$ VALUES (false, false) $$, 'release by holder of a lapsed claim: released = false');

-- The holder's own lapsed claim: a new claim, not the old one back.
CREATE TEMP TABLE w1 AS SELECT * FROM capacity.claim('LEASED', 'w');
UPDATE capacity.claims SET lease_expires_at = now() - interval '1 second' WHERE claim_id IN (SELECT claim_id FROM w1);
CREATE TEMP TABLE w2 AS SELECT * FROM capacity.claim('LEASED', 'w');
SELECT ok((SELECT claim_id FROM w2) <> (SELECT claim_id FROM w1) AND NOT (SELECT already_held FROM w2),
          'claiming again after one''s own lease lapsed makes a new claim');
SELECT is((SELECT end_reason::text FROM capacity.claims WHERE claim_id = (SELECT claim_id FROM w1)), 'expired',
          'the old one ended as expired');
SELECT is((SELECT usage_count FROM w2), 1, 'and its unit was counted once');

-- expire_idle_claims: a leased claim ends by its lease alone, an unleased one by idling.
UPDATE capacity.claims SET last_seen_at = now() - interval '2 hours'
 WHERE code_id = (SELECT code_id FROM capacity.codes WHERE code = 'PLAIN') AND released_at IS NULL;
SELECT is((SELECT expired FROM capacity.expire_idle_claims('1 hour')), 1,
          'expiry ends the idle unleased claim only');
SELECT is((SELECT released_at FROM capacity.claims WHERE claim_id = (SELECT claim_id FROM a)), NULL,
          'an idle claim whose lease runs is left alone');
UPDATE capacity.claims SET lease_expires_at = now() - interval '1 second' WHERE claim_id IN (SELECT claim_id FROM a);
UPDATE capacity.claims SET lease_expires_at = now() - interval '1 second' WHERE claim_id IN (SELECT claim_id FROM w2);
SELECT is((SELECT expired FROM capacity.expire_idle_claims('1 day')), 2,
          'expiry ends lapsed claims whatever idle says');
SELECT is((SELECT end_reason::text FROM capacity.claims WHERE claim_id = (SELECT claim_id FROM a)), 'expired',
          'as expired');

-- A slotted code: lapsed claims end wherever their units are.
CREATE TEMP TABLE s1 AS SELECT * FROM capacity.claim('SLOTS', 's1', units => 2);
CREATE TEMP TABLE s2 AS SELECT * FROM capacity.claim('SLOTS', 's2', units => 2);
SELECT is((SELECT lease_expires_at FROM s1), now() + interval '1 minute', 'slotted claims take the default lease');
SELECT throws_ok($$ SELECT capacity.claim('SLOTS', 's3') $$, 'CP005', NULL, 'SLOTS is full');
UPDATE capacity.claims SET lease_expires_at = now() - interval '1 second' WHERE claim_id IN (SELECT claim_id FROM s1);
SELECT is((SELECT usage_count FROM capacity.claim('SLOTS', 's3', units => 2)), 4,
          'a slotted code full of lapsed claims admits a claim');
UPDATE capacity.claims SET lease_expires_at = now() - interval '1 second'
 WHERE code_id = (SELECT code_id FROM capacity.codes WHERE code = 'SLOTS') AND released_at IS NULL;
SELECT is((SELECT usage_count FROM capacity.claim('SLOTS', 's4', units => 4)), 4,
          'four units, across the slots, once every lapsed claim has ended');
SELECT is((SELECT count(*) FROM capacity.claims WHERE end_reason = 'expired'
            AND code_id = (SELECT code_id FROM capacity.codes WHERE code = 'SLOTS')), 3::bigint,
          'the three lapsed claims ended as expired');

-- Bad leases.
SELECT throws_ok($$ SELECT capacity.claim('PLAIN', 'q', lease => '0 seconds') $$, 'CP001',
                 'VALIDATION_ERROR: lease must be at least 1 second, got 00:00:00', 'a zero lease is refused');
SELECT throws_ok($$ SELECT capacity.claim('PLAIN', 'q', lease => '-1 hour') $$, 'CP001', NULL,
                 'a negative lease is refused');
SELECT throws_ok($$ SELECT capacity.upsert_codes('[{"code": "PLAIN", "max_uses": 5, "lease": "soon"}]') $$, 'CP001',
                 'VALIDATION_ERROR: codes[0].lease must be an interval of at least 1 second, or null',
                 'a lease that is not an interval is refused');
SELECT throws_ok($$ SELECT capacity.upsert_codes('[{"code": "PLAIN", "max_uses": 5, "lease": 900}]') $$, 'CP001',
                 NULL, 'a lease that is not a string is refused');
SELECT throws_ok($$ SELECT capacity.upsert_codes('[{"code": "PLAIN", "max_uses": 5, "lease": "0.5 s"}]') $$, 'CP001',
                 NULL, 'a lease under a second is refused');
SELECT lives_ok($$ SELECT capacity.upsert_codes('[{"code": "LEASED", "max_uses": 3}]') $$, 'upsert without lease');
SELECT is((SELECT lease FROM capacity.codes WHERE code = 'LEASED'), interval '10 minutes', 'keeps the default lease');
SELECT lives_ok($$ SELECT capacity.upsert_codes('[{"code": "LEASED", "max_uses": 3, "lease": null}]') $$,
                'upsert with lease null');
SELECT is((SELECT lease FROM capacity.codes WHERE code = 'LEASED'), NULL, 'removes the default lease');

SELECT is_empty($$ SELECT * FROM capacity._invariant_violations() $$,
                'every counter agrees with the claims and their units');

SELECT * FROM finish();
ROLLBACK;
