-- The trigger-refreshed dashboard and the change feed: writes leave marks, publish_changes()
-- turns them into notifications, refresh_dashboard() catches up.
BEGIN;
SELECT plan(25);

SELECT lives_ok($$ SELECT capacity.upsert_codes('[{"code": "D1", "max_uses": 10, "pool": "dash"},
                                                  {"code": "D2", "max_uses": 2, "pool": "dash"},
                                                  {"code": "D3", "max_uses": 5, "pool": "other"},
                                                  {"code": "D4", "max_uses": 2000000000, "pool": "big"}]') $$,
                'fixture codes');
SELECT ok((SELECT count(*) FROM capacity.pending_changes) >= 1, 'upsert left a change mark');
SELECT results_eq($$ SELECT refreshed, reason FROM capacity.refresh_dashboard() $$,
                  $$ VALUES (true, 'changes') $$, 'marks make refresh_dashboard() refresh');
SELECT is((SELECT count(*)::integer FROM capacity.pending_changes), 0, 'the refresh published the marks');
SELECT results_eq($$ SELECT refreshed, reason FROM capacity.refresh_dashboard() $$,
                  $$ VALUES (false, 'fresh') $$, 'without writes nothing is refreshed');

SELECT lives_ok($$ SELECT capacity.claim('D2', 'h' || i) FROM generate_series(1, 2) AS i $$, 'two claims fill D2');
SELECT lives_ok($$ SELECT capacity.claim('D1', 'h' || i) FROM generate_series(1, 9) AS i $$, 'nine claims on D1');
SELECT is((SELECT count(*)::integer FROM capacity.pending_changes), 11,
          'each claim (one UPDATE of codes) appended exactly one mark');
SELECT results_eq($$ SELECT DISTINCT codes FROM capacity.pending_changes ORDER BY codes $$,
                  $$ VALUES ('{D1}'::text[]), ('{D2}') $$, 'a mark names the code its statement changed');
SELECT results_eq($$ SELECT * FROM capacity.publish_changes() $$,
                  $$ VALUES (true, 2, 'changes') $$, 'publish_changes() consumed the marks of two codes');
SELECT results_eq($$ SELECT * FROM capacity.publish_changes() $$,
                  $$ VALUES (false, 0, 'nothing') $$, 'nothing is published twice');
SELECT results_eq($$ SELECT refreshed, reason FROM capacity.refresh_dashboard() $$,
                  $$ VALUES (true, 'changes') $$, 'published changes make the dashboard refresh');
SELECT results_eq(
    $$ SELECT pool, codes, active_codes, full_codes, near_capacity_codes, units_used, units_total,
              active_claims, claims_last_hour, expiries_last_hour
         FROM capacity.dashboard WHERE pool IN ('dash', 'other') ORDER BY pool $$,
    $$ VALUES ('dash', 2, 2, 1, 2, 11::bigint, 12::bigint, 11, 11, 0),
              ('other', 1, 1, 0, 0, 0::bigint, 5::bigint, 0, 0, 0) $$,
    'the dashboard equals the per-pool aggregate');
SELECT results_eq($$ SELECT near_capacity_codes, units_total FROM capacity.dashboard WHERE pool = 'big' $$,
                  $$ VALUES (0, 2000000000::bigint) $$,
                  'the 90 % test holds near the integer limit (no overflow, not near capacity)');
SELECT results_eq($$ SELECT pool, claims, expiries FROM capacity.pool_activity ORDER BY pool $$,
                  $$ VALUES ('dash', 11::bigint, 0::bigint) $$,
                  'publishing counted the claims per pool and minute');

-- Expiries are counted too, one mark per pool of an expiry batch.
SELECT lives_ok($$ SELECT capacity.claim('D3', 'e' || i) FROM generate_series(1, 3) AS i $$, 'three claims on D3');
UPDATE capacity.claims SET last_seen_at = now() - interval '2 hours' WHERE holder IN ('e1', 'e2', 'h9');
SELECT is((SELECT expired FROM capacity.expire_idle_claims('1 hour', 100)), 3, 'three idle claims expired');
SELECT results_eq($$ SELECT pool, expiries FROM capacity.pending_changes WHERE expiries > 0 ORDER BY pool $$,
                  $$ VALUES ('dash', 1), ('other', 2) $$, 'the expiry left one counting mark per pool');
-- A counter older than an hour is neither shown nor kept.
INSERT INTO capacity.pool_activity (pool, minute, claims, expiries)
VALUES ('other', date_trunc('minute', now() - interval '2 hours', 'UTC'), 100, 100);
SELECT results_eq($$ SELECT refreshed, reason FROM capacity.refresh_dashboard() $$,
                  $$ VALUES (true, 'changes') $$, 'the expiry made the dashboard refresh');
SELECT results_eq(
    $$ SELECT pool, active_claims, claims_last_hour, expiries_last_hour
         FROM capacity.dashboard WHERE pool IN ('dash', 'other') ORDER BY pool $$,
    $$ VALUES ('dash', 10, 11, 1), ('other', 1, 3, 2) $$,
    'the last hour counts claims and expiries, not counters older than an hour');
SELECT is((SELECT count(*)::integer FROM capacity.pool_activity WHERE minute < now() - interval '1 hour'), 0,
          'the refresh dropped the counter older than an hour');
-- A refresh that took long (many codes) is not repeated at once, however many ask.
UPDATE capacity.dashboard_refreshes SET duration_ms = 3600 * 1000;
SELECT lives_ok($$ SELECT capacity.claim('D1', 'late') $$, 'a claim after a long refresh');
SELECT results_eq($$ SELECT refreshed, reason FROM capacity.refresh_dashboard() $$,
                  $$ VALUES (false, 'throttled') $$, 'the next refresh waits three times as long');
SELECT results_eq($$ SELECT refreshed, reason FROM capacity.refresh_dashboard(true) $$,
                  $$ VALUES (true, 'forced') $$, 'a forced refresh is never throttled');
SELECT results_eq($$ SELECT refreshed, reason FROM capacity.refresh_dashboard(max_age => '0 seconds') $$,
                  $$ VALUES (true, 'max_age') $$, 'an old dashboard is refreshed without writes');

SELECT * FROM finish();
ROLLBACK;
