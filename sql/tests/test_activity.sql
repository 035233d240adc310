-- Activity over time from the event log: buckets, counts per kind, units in use counted
-- back from the current usage, filters and refusals of bad arguments.
BEGIN;
SELECT plan(14);

SELECT has_function('capacity', 'activity', ARRAY['interval', 'interval', 'text', 'text'],
                    'activity(span, bucket, code, pool)');
SELECT is((SELECT proargnames FROM pg_proc
            WHERE oid = 'capacity.activity(interval,interval,text,text)'::regprocedure),
          ARRAY['span', 'bucket', 'code', 'pool', 'bucket_start', 'claimed', 'released',
                'expired', 'revoked', 'units_in_use'], 'activity argument and column names');

SELECT lives_ok($$ SELECT capacity.upsert_codes('[
    {"code": "ACT-A", "max_uses": 5, "pool": "halls"},
    {"code": "ACT-B", "max_uses": 5, "pool": "halls", "slots": 2},
    {"code": "ACT-C", "max_uses": 5, "pool": "rooms"}]') $$, 'fixture codes');
-- Two claims on ACT-A made ten minutes ago (their events moved back), then one now and a
-- release now; ACT-B: two claims now (slotted); ACT-C: a claim now.
SELECT lives_ok($$ SELECT capacity.claim('ACT-A', 'ann'), capacity.claim('ACT-A', 'bob') $$, 'two claims');
UPDATE capacity.events SET occurred_at = now() - interval '10 minutes' WHERE code = 'ACT-A';
SELECT lives_ok($$ SELECT capacity.claim('ACT-A', 'cy'), capacity.release('ACT-A', 'bob'),
                          capacity.claim('ACT-B', 'ann'), capacity.claim('ACT-B', 'bob'),
                          capacity.claim('ACT-C', 'ann') $$, 'claims and a release now');

SELECT is((SELECT count(*)::integer FROM capacity.activity()), 60, 'an hour in minutes: 60 buckets');
SELECT is((SELECT count(*)::integer FROM capacity.activity('1 day', '10 minutes')), 144,
          'a day in 10-minute buckets: 144');
SELECT results_eq(
    $$ SELECT bucket_start = date_bin('1 minute', now(), timestamptz 'epoch'), claimed, released, units_in_use
         FROM capacity.activity(code => 'act-a') ORDER BY bucket_start DESC LIMIT 1 $$,
    $$ VALUES (true, 1, 1, 2) $$, 'the last bucket holds now: a claim, a release, 2 units in use');
SELECT results_eq(
    $$ SELECT claimed, units_in_use FROM capacity.activity(code => 'ACT-A')
        WHERE bucket_start = date_bin('1 minute', now() - interval '10 minutes', timestamptz 'epoch') $$,
    $$ VALUES (2, 2) $$, 'ten minutes ago: two claims, two units in use after them');
SELECT results_eq(
    $$ SELECT sum(claimed)::integer, min(units_in_use), max(units_in_use)
         FROM capacity.activity(code => 'ACT-A')
        WHERE bucket_start < date_bin('1 minute', now() - interval '10 minutes', timestamptz 'epoch') $$,
    $$ VALUES (0, 0, 0) $$, 'before them: nothing, no unit in use (counted back from the usage)');
SELECT results_eq(
    $$ SELECT sum(claimed)::integer, sum(released)::integer,
              (array_agg(units_in_use ORDER BY bucket_start DESC))[1]
         FROM capacity.activity(pool => 'halls') $$,
    $$ VALUES (5, 1, 4) $$, 'a pool: its codes'' events and units (slotted codes included)');
SELECT results_eq(
    $$ SELECT (array_agg(units_in_use ORDER BY bucket_start DESC))[1] FROM capacity.activity() $$,
    $$ VALUES ((SELECT sum(usage_count)::integer FROM capacity.code_usage)) $$,
    'every code: units in use now equal the usage of all codes');

SELECT throws_ok($$ SELECT * FROM capacity.activity('1 day', '1 second') $$, 'CP001', NULL,
                 'more than 1440 buckets is refused');
SELECT throws_ok($$ SELECT * FROM capacity.activity(code => 'NO-SUCH') $$, 'CP002', NULL,
                 'an unknown code: CODE_NOT_FOUND');

SELECT * FROM finish();
ROLLBACK;
