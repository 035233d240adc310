-- Holder limits, expiry of idle claims, revoke, reconcile, retention.
BEGIN;
SELECT plan(35);

SELECT lives_ok($$ SELECT capacity.upsert_codes('[
    {"code": "BILL-1", "max_uses": 1, "pool": "bills"}, {"code": "BILL-2", "max_uses": 1, "pool": "bills"},
    {"code": "BILL-3", "max_uses": 1, "pool": "bills"}, {"code": "BILL-4", "max_uses": 1, "pool": "bills"},
    {"code": "ROOM", "max_uses": 10}]') $$, 'fixture codes');

-- Holder limits: at most 3 bills per reviewer.
SELECT lives_ok($$ SELECT capacity.set_holder_limit('bills', 'rev', 3) $$, 'limit rev to 3 bills');
SELECT lives_ok($$ SELECT capacity.claim('BILL-1', 'rev'), capacity.claim('BILL-2', 'rev'), capacity.claim('BILL-3', 'rev') $$,
                'rev takes three bills');
SELECT throws_ok($$ SELECT capacity.claim('BILL-4', 'rev') $$, 'CP006',
                 'HOLDER_LIMIT_EXCEEDED: holder ''rev'' already holds 3/3 claims in pool bills',
                 'a fourth bill raises HOLDER_LIMIT_EXCEEDED (CP006)');
SELECT is((SELECT usage_count FROM capacity.codes WHERE code = 'BILL-4'), 0, 'the refused claim used no unit');
SELECT lives_ok($$ SELECT capacity.claim('ROOM', 'rev') $$, 'the limit is per pool: other pools are free');
SELECT throws_ok($$ SELECT capacity.set_holder_limit('bills', 'rev', 2) $$, 'CP009', NULL,
                 'a limit below the active claims raises CAPACITY_BELOW_USAGE');
SELECT results_eq($$ SELECT pool, holder, active_claims, max_claims, has_reached_limit FROM capacity.holder_usage WHERE pool = 'bills' $$,
                  $$ VALUES ('bills', 'rev', 3, 3, true) $$, 'holder_usage shows the limit reached');
SELECT lives_ok($$ SELECT capacity.set_holder_limit('bills', 'rev', NULL) $$, 'NULL removes the limit');
SELECT lives_ok($$ SELECT capacity.claim('BILL-4', 'rev') $$, 'without a limit the fourth bill is fine');
SELECT throws_ok($$ SELECT capacity.set_holder_limit('bills', 'rev', -1) $$, 'CP001', NULL, 'a negative limit is refused');
SELECT throws_ok($$ SELECT capacity.set_holder_limit('no pool!', 'rev', 1) $$, 'CP001', NULL, 'a malformed pool is refused');
SELECT lives_ok($$ SELECT capacity.set_holder_limit('bills', 'newbie', 0) $$, 'a limit for a holder that never claimed');

-- Expiry: only idle claims, units and holder counters given back, events logged.
UPDATE capacity.claims SET last_seen_at = now() - interval '2 hours'
 WHERE code_id IN (SELECT code_id FROM capacity.codes WHERE code IN ('BILL-1', 'BILL-2'));
SELECT results_eq($$ SELECT expired, codes_touched, holders_touched, more_pending FROM capacity.expire_idle_claims('1 hour') $$,
                  $$ VALUES (2, 2, 1, false) $$, 'two idle claims expire');
SELECT results_eq($$ SELECT code, usage_count FROM capacity.codes WHERE code LIKE 'BILL-%' ORDER BY code $$,
                  $$ VALUES ('BILL-1', 0), ('BILL-2', 0), ('BILL-3', 1), ('BILL-4', 1) $$, 'their units are back');
SELECT is((SELECT active_claims FROM capacity.holder_usage WHERE pool = 'bills' AND holder = 'rev'), 2, 'rev holds 2 bills');
SELECT lives_ok($$ SELECT capacity.set_holder_limit('bills', 'rev', 2) $$, 'a limit equal to the active claims is fine');
SELECT is((SELECT active_claims FROM capacity.holders WHERE pool = 'bills' AND holder = 'rev'), 2,
          'a new limit counts the claims made while rev was unlimited');
SELECT throws_ok($$ SELECT capacity.claim('BILL-1', 'rev') $$, 'CP006', NULL, 'and enforces them');
SELECT is((SELECT count(*)::integer FROM capacity.claims WHERE end_reason = 'expired'), 2, 'end_reason = expired');
SELECT is((SELECT count(*)::integer FROM capacity.events WHERE kind = 'expired'), 2, 'two expired events');
SELECT results_eq($$ SELECT expired FROM capacity.expire_idle_claims('1 hour') $$, $$ VALUES (0) $$,
                  'nothing expires twice');
UPDATE capacity.claims SET last_seen_at = now() - interval '2 hours' WHERE released_at IS NULL;
SELECT results_eq($$ SELECT expired, more_pending FROM capacity.expire_idle_claims('1 hour', 1) $$,
                  $$ VALUES (1, true) $$, 'batch_size bounds a call, more_pending says there is more');
SELECT throws_ok($$ SELECT capacity.expire_idle_claims('-1 hour') $$, 'CP001', NULL, 'a negative idle interval is refused');
SELECT throws_ok($$ SELECT capacity.expire_idle_claims('1 hour', 0) $$, 'CP001', NULL, 'batch_size 0 is refused');

-- Revoke: deactivates and ends the active claims.
SELECT lives_ok($$ SELECT capacity.claim('ROOM', 'u1'), capacity.claim('ROOM', 'u2') $$, 'two more claims on ROOM');
SELECT results_eq($$ SELECT claims_ended, revoked FROM capacity.revoke_code('room') $$,
                  $$ SELECT count(*)::integer, count(*)::integer FROM capacity.claims c JOIN capacity.codes k USING (code_id)
                             WHERE k.code = 'ROOM' AND c.released_at IS NULL $$, 'revoke ends every active claim of the code');
SELECT results_eq($$ SELECT claims_ended FROM capacity.revoke_code('ROOM') $$, $$ VALUES (0) $$,
                  'revoking again: the code stays revoked, no claim left to end');
SELECT results_eq($$ SELECT is_active, usage_count FROM capacity.codes WHERE code = 'ROOM' $$,
                  $$ VALUES (false, 0) $$, 'the code is inactive and unused');
SELECT throws_ok($$ SELECT capacity.claim('ROOM', 'u3') $$, 'CP003', NULL, 'a revoked code cannot be claimed');
SELECT throws_ok($$ SELECT capacity.revoke_code('NOPE') $$, 'CP002', NULL, 'revoking an unknown code: CODE_NOT_FOUND');

-- Reconcile finds and repairs drift (made here by hand, bypassing the functions).
UPDATE capacity.codes SET usage_count = usage_count + 1 WHERE code = 'BILL-1';
SELECT results_eq($$ SELECT code, usage_count, active_claims, drift FROM capacity.reconcile(fix => true) $$,
                  $$ VALUES ('BILL-1', 1, 0, 1) $$, 'reconcile reports the drifting code');
SELECT is_empty($$ SELECT * FROM capacity.reconcile() $$, 'after fix => true there is no drift');

-- Retention.
UPDATE capacity.events SET occurred_at = now() - interval '100 days' WHERE kind = 'expired';
UPDATE capacity.claims SET released_at = now() - interval '100 days' WHERE end_reason = 'expired';
SELECT results_eq($$ SELECT events_deleted, claims_deleted FROM capacity.prune_events('90 days') $$,
                  $$ SELECT 3, 3 $$, 'prune_events deletes old events and old ended claims');
SELECT is((SELECT count(*)::integer FROM capacity.claims WHERE released_at IS NULL), 1,
          'the one active claim left is not pruned');

SELECT * FROM finish();
ROLLBACK;
