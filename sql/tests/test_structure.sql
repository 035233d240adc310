-- Structure: schema, tables, result types, and every public function's signature pinned.
BEGIN;
SELECT plan(98);

SELECT has_schema('capacity', 'schema capacity exists');
SELECT tables_are('capacity', ARRAY['codes', 'holders', 'claims', 'events', 'app_roles', 'migrations',
                                    'pending_changes', 'change_feed', 'dashboard_refreshes', 'code_slots',
                                    'pool_activity', 'dashboard_pools', 'pool_limits', 'pool_stripes'],
                  'capacity has exactly the expected tables');
SELECT views_are('capacity', ARRAY['code_usage', 'holder_usage', 'pool_usage', 'dashboard'], 'capacity has exactly the expected views');
SELECT materialized_views_are('capacity', ARRAY[]::name[],
                              'no materialized view (the dashboard is a table the refresh rewrites, migration 0009)');

SELECT columns_are('capacity', 'codes',
    ARRAY['code_id', 'code', 'pool', 'max_uses', 'usage_count', 'is_active', 'expires_at',
          'metadata', 'created_at', 'updated_at', 'slots', 'lease', 'max_total_claims', 'total_claims'], 'codes columns');
SELECT columns_are('capacity', 'claims',
    ARRAY['claim_id', 'code_id', 'pool', 'holder', 'token', 'claimed_at', 'last_seen_at',
          'released_at', 'end_reason', 'slot_id', 'units', 'lease', 'lease_expires_at'], 'claims columns');
SELECT columns_are('capacity', 'code_slots',
    ARRAY['slot_id', 'code_id', 'slot', 'used', 'cap'], 'code_slots columns');
SELECT columns_are('capacity', 'holders',
    ARRAY['pool', 'holder', 'active_claims', 'max_claims', 'updated_at'], 'holders columns');
SELECT columns_are('capacity', 'events',
    ARRAY['event_id', 'occurred_at', 'kind', 'code_id', 'code', 'pool', 'holder', 'claim_id',
          'usage_after', 'units', 'xact_id'], 'events columns');

SELECT col_is_pk('capacity', 'codes', 'code_id', 'codes.code_id is the primary key');
SELECT col_is_unique('capacity', 'codes', 'code', 'codes.code is unique');
SELECT col_isnt_fk('capacity', 'claims', 'code_id',
                   'claims.code_id has no FK (its KEY SHARE lock would make the code row hot again)');
SELECT col_is_fk('capacity', 'code_slots', 'code_id', 'code_slots.code_id references codes');
SELECT col_is_unique('capacity', 'code_slots', ARRAY['code_id', 'slot'], 'one row per (code, slot)');
SELECT col_is_pk('capacity', 'holders', ARRAY['pool', 'holder'], 'holders key is (pool, holder)');
SELECT has_check('capacity', 'codes', 'codes has CHECK constraints');
SELECT has_index('capacity', 'claims', 'claims_one_active_per_holder', ARRAY['holder', 'code_id'],
                 'one active claim per (code, holder) index, also a holder''s active claims');
SELECT index_is_unique('capacity', 'claims', 'claims_one_active_per_holder', 'that index is unique');
SELECT is((SELECT reloptions FROM pg_class WHERE oid = 'capacity.claims'::regclass),
          ARRAY['fillfactor=90'], 'claims pages keep room for HOT heartbeats');
SELECT indexes_are('capacity', 'claims',
    ARRAY['claims_pkey', 'claims_one_active_per_holder', 'claims_lease_idx'],
    'claims has only the indexes its queries need (none on last_seen_at: heartbeats stay HOT)');
SELECT has_index('capacity', 'claims', 'claims_lease_idx', ARRAY['code_id', 'lease_expires_at'],
                 'leased active claims by code and lease end (lazy expiry finds them without a scan)');
SELECT indexes_are('capacity', 'events', ARRAY['events_pkey', 'events_occurred_at', 'events_in_delivery_order'],
                   'events has only its key, time-range and delivery-order indexes');
SELECT has_index('capacity', 'events', 'events_in_delivery_order', ARRAY['xact_id', 'event_id'],
                 'the event stream reads in (writing transaction, event id) order');
SELECT col_not_null('capacity', 'holders', 'max_claims', 'a holder row exists only for a limit');
SELECT has_index('capacity', 'events', 'events_occurred_at', 'events time-range index');

SELECT has_type('capacity', 'code_status', 'type code_status');
SELECT has_type('capacity', 'claim_result', 'type claim_result');
SELECT has_type('capacity', 'release_result', 'type release_result');
SELECT has_type('capacity', 'expiry_result', 'type expiry_result');

-- Public signatures (docs/contract.md): names, argument types and results are the contract.
SELECT has_function('capacity', 'claim', ARRAY['text', 'text', 'text', 'integer', 'interval'], 'claim(code, holder, lock_mode, units, lease)');
SELECT function_returns('capacity', 'claim', ARRAY['text', 'text', 'text', 'integer', 'interval'], 'capacity.claim_result', 'claim returns claim_result');
SELECT is(ARRAY(SELECT a.attname::text FROM pg_attribute AS a
                 WHERE a.attrelid = 'capacity.claim_result'::regclass AND a.attnum > 0 AND NOT a.attisdropped
                 ORDER BY a.attnum),
          ARRAY['claim_id', 'token', 'code', 'holder', 'usage_count', 'max_uses', 'remaining',
                'already_held', 'claimed_at', 'units', 'lease_expires_at', 'fence'], 'claim_result columns');
SELECT is(ARRAY(SELECT a.attname::text FROM pg_attribute AS a
                 WHERE a.attrelid = 'capacity.claim_info'::regclass AND a.attnum > 0 AND NOT a.attisdropped
                 ORDER BY a.attnum),
          ARRAY['claim_id', 'code', 'pool', 'holder', 'claimed_at', 'last_seen_at', 'released_at',
                'end_reason', 'units', 'lease_expires_at'], 'claim_info columns');
SELECT has_function('capacity', 'activity', ARRAY['interval', 'interval', 'text', 'text'],
                    'activity(span, bucket, code, pool)');
SELECT has_function('capacity', 'release', ARRAY['bigint', 'uuid'], 'release(claim_id, token)');
SELECT function_returns('capacity', 'release', ARRAY['bigint', 'uuid'], 'capacity.release_result', 'release(id) returns release_result');
SELECT has_function('capacity', 'release', ARRAY['text', 'text'], 'release(code, holder)');
SELECT function_returns('capacity', 'release', ARRAY['text', 'text'], 'capacity.release_result', 'release(code, holder) returns release_result');
SELECT has_function('capacity', 'heartbeat', ARRAY['bigint', 'uuid'], 'heartbeat(claim_id, token)');
SELECT function_returns('capacity', 'heartbeat', ARRAY['bigint', 'uuid'], 'timestamp with time zone', 'heartbeat returns timestamptz');
SELECT function_returns('capacity', 'assert_held', ARRAY['bigint', 'uuid'], 'bigint', 'assert_held(claim_id, token) returns the fence');
SELECT has_function('capacity', 'check', ARRAY['text'], 'check(code)');
SELECT function_returns('capacity', 'check', ARRAY['text'], 'capacity.code_status', 'check returns code_status');
SELECT has_function('capacity', 'usage_batch', ARRAY['text[]'], 'usage_batch(codes)');
SELECT function_returns('capacity', 'usage_batch', ARRAY['text[]'], 'setof capacity.code_status', 'usage_batch returns setof code_status');
SELECT has_function('capacity', 'expire_idle_claims', ARRAY['interval', 'integer'], 'expire_idle_claims(idle, batch_size)');
SELECT function_returns('capacity', 'expire_idle_claims', ARRAY['interval', 'integer'], 'capacity.expiry_result', 'expire_idle_claims returns expiry_result');
SELECT has_function('capacity', 'upsert_codes', ARRAY['jsonb'], 'upsert_codes(codes)');
SELECT function_returns('capacity', 'upsert_codes', ARRAY['jsonb'], 'setof record', 'upsert_codes returns (inserted, updated)');
SELECT has_function('capacity', 'set_holder_limit', ARRAY['text', 'text', 'integer'], 'set_holder_limit(pool, holder, max_claims)');
SELECT function_returns('capacity', 'set_holder_limit', ARRAY['text', 'text', 'integer'], 'void', 'set_holder_limit returns void');
SELECT has_function('capacity', 'revoke_code', ARRAY['text'], 'revoke_code(code)');
SELECT has_function('capacity', 'reconcile', ARRAY['boolean'], 'reconcile(fix)');
SELECT has_function('capacity', 'error_codes', ARRAY[]::text[], 'error_codes()');
SELECT has_function('capacity', 'version', ARRAY[]::text[], 'version()');
SELECT has_function('capacity', 'events_after', ARRAY['bigint', 'integer'], 'events_after(after_event_id, max_events)');
SELECT has_function('capacity', 'last_event_id', ARRAY[]::text[], 'last_event_id()');
SELECT function_returns('capacity', 'version', ARRAY[]::text[], 'text', 'version returns text');
SELECT has_function('capacity', 'prune_events', ARRAY['interval', 'integer'], 'prune_events(older_than, batch_size)');
SELECT has_function('capacity', 'grant_app_access', ARRAY['name'], 'grant_app_access(app_role)');
SELECT has_function('capacity', 'refresh_dashboard', ARRAY['boolean', 'interval'], 'refresh_dashboard(force, max_age)');
SELECT has_function('capacity', 'publish_changes', ARRAY[]::text[], 'publish_changes()');
SELECT has_function('capacity', 'tune_slots', ARRAY['integer', 'integer'], 'tune_slots(min_claims, slots)');
SELECT function_returns('capacity', 'list_codes', ARRAY['text', 'text', 'text', 'integer'], 'setof capacity.code_status',
                        'list_codes(search, pool, after, page_size) returns setof code_status');
SELECT function_returns('capacity', 'list_claims', ARRAY['text', 'text', 'bigint', 'integer'], 'setof capacity.claim_info',
                        'list_claims(code, holder, after, page_size) returns setof claim_info');
SELECT function_returns('capacity', 'get_claim', ARRAY['bigint'], 'capacity.claim_info', 'get_claim(claim_id) returns claim_info');
SELECT is((SELECT proargnames FROM pg_proc WHERE oid = 'capacity.list_codes(text,text,text,integer)'::regprocedure),
          ARRAY['search', 'pool', 'after', 'page_size'], 'list_codes argument names');
SELECT is((SELECT proargnames FROM pg_proc WHERE oid = 'capacity.list_claims(text,text,bigint,integer)'::regprocedure),
          ARRAY['code', 'holder', 'after', 'page_size'], 'list_claims argument names');

-- Argument names are part of the API (named-argument calls).
SELECT is((SELECT proargnames FROM pg_proc WHERE oid = 'capacity.claim(text,text,text,integer,interval)'::regprocedure),
          ARRAY['code', 'holder', 'lock_mode', 'units', 'lease'], 'claim argument names');
SELECT is((SELECT pg_get_expr(proargdefaults, 0) FROM pg_proc WHERE oid = 'capacity.claim(text,text,text,integer,interval)'::regprocedure),
          '''advisory''::text, 1, NULL::interval', 'claim defaults to the advisory lock mode, one unit and no lease of its own');
SELECT is((SELECT proargnames FROM pg_proc WHERE oid = 'capacity.expire_idle_claims(interval,integer)'::regprocedure),
          ARRAY['idle', 'batch_size'], 'expire_idle_claims argument names');

-- Security: every public function is SECURITY DEFINER with a pinned search_path.
SELECT is_empty($$
    SELECT p.oid::regprocedure::text FROM pg_proc p
     WHERE p.pronamespace = 'capacity'::regnamespace AND p.proname !~ '^_'
       AND p.proname NOT IN ('grant_app_access', 'schedule_maintenance', 'unschedule_maintenance')
       AND NOT p.prosecdef $$,
    'every public function is SECURITY DEFINER');
SELECT is_empty($$
    SELECT p.oid::regprocedure::text FROM pg_proc p
     WHERE p.pronamespace = 'capacity'::regnamespace AND p.proname !~ '^_'
       AND NOT coalesce('search_path=pg_catalog, pg_temp' = ANY (p.proconfig), false) $$,
    'every public function pins search_path = pg_catalog, pg_temp');
SELECT is_empty($$
    SELECT p.oid::regprocedure::text FROM pg_proc p
     WHERE p.pronamespace = 'capacity'::regnamespace AND has_function_privilege('public', p.oid, 'EXECUTE') $$,
    'PUBLIC cannot execute any capacity function');

-- The view contracts (docs/contract.md).
SELECT has_column('capacity', 'code_usage', c, format('code_usage.%s', c))
  FROM unnest(ARRAY['code', 'pool', 'is_active', 'expires_at', 'usage_count', 'max_uses', 'remaining',
                    'utilisation', 'near_capacity', 'has_reached_limit', 'active_claims']) AS c;
SELECT is(count(*)::integer, 5, 'holder_usage has the five contract columns')
  FROM information_schema.columns
 WHERE table_schema = 'capacity' AND table_name = 'holder_usage'
   AND column_name IN ('pool', 'holder', 'active_claims', 'max_claims', 'has_reached_limit');

SELECT columns_are('capacity', 'dashboard',
    ARRAY['pool', 'codes', 'active_codes', 'full_codes', 'near_capacity_codes', 'units_used',
          'units_total', 'active_claims', 'claims_last_hour', 'expiries_last_hour', 'refreshed_at'],
    'dashboard columns (the contract)');
SELECT col_is_pk('capacity', 'dashboard_pools', 'pool', 'the dashboard has one row per pool');
-- The periodic maintenance queries must not pay for JIT compilation (their cost estimates
-- grow with the data; compiling took ten times the refresh itself).
SELECT is_empty($$
    SELECT p.proname::text FROM pg_proc p
     WHERE p.oid IN ('capacity.refresh_dashboard(boolean,interval)'::regprocedure,
                     'capacity.tune_slots(integer,integer)'::regprocedure)
       AND NOT coalesce('jit=off' = ANY (p.proconfig), false) $$,
    'refresh_dashboard and tune_slots run with jit = off');
-- The dashboard's last hour comes from per-minute counters, not from the events.
SELECT ok(pg_get_functiondef('capacity.refresh_dashboard(boolean,interval)'::regprocedure) !~ 'capacity\.events'
          AND pg_get_functiondef('capacity.refresh_dashboard(boolean,interval)'::regprocedure) ~ 'pool_activity',
          'the dashboard counts the last hour from pool_activity, not by scanning events');
-- The change feed: one trigger call per INSERT, DELETE and TRUNCATE statement; per row only
-- for updates of what a status shows besides usage (claims and releases append their own
-- marks, so their usage update fires no trigger at all).
SELECT is((SELECT count(*)::integer FROM pg_trigger
            WHERE tgrelid = 'capacity.codes'::regclass AND NOT tgisinternal
              AND tgfoid = 'capacity._codes_changed()'::regprocedure
              AND tgtype & 1 = 0),
          3, 'codes has three statement-level change-feed triggers (insert, delete, truncate)');
SELECT is((SELECT array_agg(a.attname::text ORDER BY a.attname)
             FROM pg_trigger AS t
             JOIN pg_attribute AS a ON a.attrelid = t.tgrelid AND a.attnum = ANY (t.tgattr::int2[])
            WHERE t.tgrelid = 'capacity.codes'::regclass AND t.tgname = 'codes_changed_update'),
          ARRAY['code', 'expires_at', 'is_active', 'max_uses', 'metadata', 'pool', 'slots'],
          'the row-level update trigger lists the status columns, never usage_count');

-- Format rules of codes (a column-specific trigger, not CHECKs: see migration 0005) still
-- refuse direct writes, with the SQLSTATE and constraint name of a CHECK.
SELECT throws_ok($$INSERT INTO capacity.codes (code, max_uses) VALUES ('bad code', 1)$$,
                 '23514', 'new row for relation "codes" violates check constraint "codes_code_format"',
                 'a direct insert of a malformed code is refused');
SELECT throws_ok($$INSERT INTO capacity.codes (code, pool, max_uses) VALUES ('OK1', 'bad pool', 1)$$,
                 '23514', 'new row for relation "codes" violates check constraint "codes_pool_format"',
                 'a direct insert of a malformed pool is refused');
SELECT throws_ok($$INSERT INTO capacity.codes (code, max_uses, metadata) VALUES ('OK1', 1, '[]')$$,
                 '23514', 'new row for relation "codes" violates check constraint "codes_metadata_is_object"',
                 'metadata must be a JSON object');
SELECT lives_ok($$INSERT INTO capacity.codes (code, max_uses) VALUES ('SLOTS-RANGE', 1)$$,
                'a well-formed direct insert passes the format rules');
SELECT throws_ok($$UPDATE capacity.codes SET slots = 300 WHERE code = 'SLOTS-RANGE'$$,
                 '23514', 'new row for relation "codes" violates check constraint "codes_slots_range"',
                 'slots stay within 0..256');
SELECT throws_ok($$INSERT INTO capacity.codes (code, max_uses) VALUES ('OK1', -1)$$,
                 '23514', NULL, 'max_uses below 0 is refused (by the usage CHECK)');

SELECT * FROM finish();
ROLLBACK;
