-- The event stream: events_after() delivers ended transactions' events in (writing
-- transaction, event id) order, resumes after a delivered id, and never an event of a
-- transaction still running (this test's own, here).
BEGIN;
SELECT plan(12);

SELECT lives_ok($$ SELECT * FROM capacity.upsert_codes('[{"code": "FEED", "max_uses": 5}]') $$, 'fixture code');
CREATE TEMP TABLE c1 AS SELECT * FROM capacity.claim('FEED', 'a');
CREATE TEMP TABLE c2 AS SELECT * FROM capacity.claim('FEED', 'b');
SELECT capacity.release((SELECT claim_id FROM c1));

SELECT is((SELECT count(*)::int FROM capacity.events_after()), 0,
          'events of a transaction still running are not delivered');
SELECT is(capacity.last_event_id(), NULL, 'nor is there a last deliverable event');

-- As if written by two ended transactions, the later one (xid 6) writing its event first.
UPDATE capacity.events AS e SET xact_id = '7'
 WHERE e.claim_id = (SELECT claim_id FROM c1);
UPDATE capacity.events AS e SET xact_id = '6'
 WHERE e.claim_id = (SELECT claim_id FROM c2);
SELECT is(ARRAY(SELECT kind || ' ' || holder FROM capacity.events_after()),
          ARRAY['claimed b', 'claimed a', 'released a'],
          'delivered in writing-transaction order, then by event id');
SELECT is(capacity.last_event_id(),
          (SELECT e.event_id FROM capacity.events AS e WHERE e.kind = 'released'),
          'the last deliverable event is the last in that order');
SELECT is(ARRAY(SELECT holder FROM capacity.events_after(max_events => 2)), ARRAY['b', 'a'],
          'max_events bounds a batch');
SELECT is(ARRAY(SELECT kind || ' ' || holder FROM capacity.events_after(
              (SELECT e.event_id FROM capacity.events AS e WHERE e.claim_id = (SELECT claim_id FROM c2)))),
          ARRAY['claimed a', 'released a'],
          'resuming after an event delivers what follows it, lower event ids included');
SELECT is((SELECT count(*)::int FROM capacity.events_after(capacity.last_event_id())), 0,
          'nothing after the last deliverable event');
SELECT is((SELECT row(code, pool, units, usage_after, claim_id)::text FROM capacity.events_after(max_events => 1)),
          row('FEED', 'default', 1, 2, (SELECT claim_id FROM c2))::text,
          'an event carries its code, pool, units, usage after it and claim');

SELECT throws_ok($$ SELECT * FROM capacity.events_after(max_events => 0) $$, 'CP001', NULL,
                 'max_events below 1: VALIDATION_ERROR');
SELECT throws_ok(format('SELECT * FROM capacity.events_after(%s)',
                        (SELECT max(event_id) + 1000 FROM capacity.events)),
                 'CP001', NULL, 'an id never in the log: VALIDATION_ERROR');
SELECT is((SELECT count(*)::int FROM capacity.events_after(
              (SELECT min(event_id) - 1 FROM capacity.events))), 3,
          'an id older than the log (pruned) reads from the oldest event kept');

SELECT * FROM finish();
ROLLBACK;
