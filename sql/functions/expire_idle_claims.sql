-- Ends claims idle longer than `idle`, and claims past their lease (a claim with a lease
-- ends by its lease alone), and gives their units back, batch_size at a time.
-- Never waits on a live claim: codes and claims that are locked right now are skipped
-- (SKIP LOCKED) and left for the next call. One runner at a time (advisory lock); a
-- second concurrent caller returns zeros at once. Safe to call in a loop while
-- more_pending is true. Idle claims are found by one read of the active claims (no index
-- on last_seen_at, so that heartbeats are HOT updates).
CREATE OR REPLACE FUNCTION capacity.expire_idle_claims(
    idle interval DEFAULT '30 minutes', batch_size integer DEFAULT 1000)
RETURNS capacity.expiry_result
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    v_cutoff  timestamptz;
    v_locked  bigint[];
    v_expired integer;
    v_codes   integer;
    v_pools   text[];
    v_holders text[];
    v_holder_rows integer := 0;
    v_more    boolean;
    v_claim_ids     bigint[];
    v_code_ids      bigint[];
    v_slot_ids      bigint[];
    v_units         integer[];
    v_claim_holders text[];
    v_base          record;
    v_slots_locked  bigint[];
    v_candidates    bigint[];  -- the oldest idle claims on codes free right now
    v_overflow      boolean;   -- more of them than batch_size
BEGIN
    IF idle IS NULL OR idle < interval '0' THEN
        RAISE EXCEPTION 'VALIDATION_ERROR: idle must be a non-negative interval, got %', COALESCE(idle::text, 'null')
            USING ERRCODE = 'CP001', DETAIL = jsonb_build_object('field', 'idle')::text,
                  HINT = 'Pass an interval such as ''30 minutes'', or leave idle out for the default.';
    END IF;
    IF batch_size IS NULL OR batch_size NOT BETWEEN 1 AND 100000 THEN
        RAISE EXCEPTION 'VALIDATION_ERROR: batch_size must be between 1 and 100000, got %', COALESCE(batch_size::text, 'null')
            USING ERRCODE = 'CP001', DETAIL = jsonb_build_object('field', 'batch_size')::text,
                  HINT = 'Pass a batch_size from 1 to 100000, or leave it out for the default.';
    END IF;
    IF NOT pg_try_advisory_xact_lock(capacity._lock_namespace(), -1) THEN
        RETURN ROW(0, 0, 0, false)::capacity.expiry_result;  -- another runner is at work
    END IF;
    v_cutoff := now() - idle;

    -- 0. The oldest idle claims whose code nobody else holds right now, their code rows
    --    locked: the one read of the active claims, and the first lock taken. Busy codes
    --    are skipped, so their claims do not use up the batch. (Expiry never waits for a
    --    row lock, so the order it takes them in cannot deadlock.) One claim more than
    --    batch_size says whether more are pending.
    v_candidates := array(SELECT k.claim_id
                            FROM capacity.claims AS k
                            JOIN capacity.codes AS c ON c.code_id = k.code_id
                           WHERE k.released_at IS NULL
                             AND (k.lease_expires_at <= now() OR (k.lease IS NULL AND k.last_seen_at < v_cutoff))
                           ORDER BY k.last_seen_at, k.claim_id
                           LIMIT batch_size + 1
                             FOR NO KEY UPDATE OF c SKIP LOCKED);
    v_overflow := cardinality(v_candidates) > batch_size;
    v_candidates := v_candidates[1:batch_size];
    v_locked := array(SELECT DISTINCT k.code_id FROM capacity.claims AS k
                       WHERE k.claim_id = ANY (v_candidates));

    -- 1. Then the slot rows holding units of those idle claims (lock order: code, slot,
    --    claim), skipping slots a claim or release is using right now.
    v_slots_locked := array(
        SELECT s.slot_id FROM capacity.code_slots AS s
         WHERE s.code_id = ANY (v_locked)
           AND s.slot_id IN (SELECT k.slot_id FROM capacity.claims AS k
                              WHERE k.claim_id = ANY (v_candidates)
                                AND k.code_id = ANY (v_locked) AND k.released_at IS NULL
                                AND k.slot_id IS NOT NULL
                                AND (k.lease_expires_at <= now() OR (k.lease IS NULL AND k.last_seen_at < v_cutoff)))
         ORDER BY s.code_id, s.slot
           FOR NO KEY UPDATE SKIP LOCKED);

    -- 2. End their idle claims (skipping claims locked by a heartbeat in flight and claims
    --    in a slot we could not lock; the idle condition is re-checked on the latest row).
    WITH ended AS (
        UPDATE capacity.claims AS cl
           SET released_at = now(), end_reason = 'expired'
         WHERE cl.claim_id IN (
                SELECT k.claim_id FROM capacity.claims AS k
                 WHERE k.claim_id = ANY (v_candidates)
                   AND k.code_id = ANY (v_locked)
                   AND k.released_at IS NULL
                   AND (k.lease_expires_at <= now() OR (k.lease IS NULL AND k.last_seen_at < v_cutoff))
                   AND (k.slot_id IS NULL OR k.slot_id = ANY (v_slots_locked)
                        OR NOT EXISTS (SELECT 1 FROM capacity.code_slots AS s WHERE s.slot_id = k.slot_id))
                 ORDER BY k.last_seen_at
                 LIMIT batch_size
                   FOR UPDATE SKIP LOCKED)
           AND cl.released_at IS NULL
        RETURNING cl.claim_id, cl.code_id, cl.pool, cl.holder, cl.slot_id, cl.units
    )
    SELECT count(*)::integer, count(DISTINCT code_id)::integer,
           array_agg(pool ORDER BY pool, holder), array_agg(holder ORDER BY pool, holder),
           array_agg(claim_id ORDER BY claim_id), array_agg(code_id ORDER BY claim_id),
           array_agg(slot_id ORDER BY claim_id), array_agg(holder ORDER BY claim_id),
           array_agg(units ORDER BY claim_id)
      INTO v_expired, v_codes, v_pools, v_holders, v_claim_ids, v_code_ids, v_slot_ids, v_claim_holders,
           v_units
      FROM ended;

    -- 3. Give the units back: to the slot rows holding them, else to the code rows (the
    --    code rows are ours, so no slot row can appear or vanish meanwhile).
    IF v_expired > 0 THEN
        UPDATE capacity.code_slots AS s
           SET used = s.used - g.n
          FROM (SELECT u.slot_id, sum(u.units)::integer AS n
                  FROM unnest(v_slot_ids, v_units) AS u(slot_id, units)
                 WHERE u.slot_id IS NOT NULL GROUP BY u.slot_id) AS g
         WHERE s.slot_id = g.slot_id;
        FOR v_base IN
            UPDATE capacity.codes AS c
               SET usage_count = c.usage_count - g.n
              FROM (SELECT u.code_id, sum(u.units)::integer AS n
                      FROM unnest(v_code_ids, v_slot_ids, v_units) AS u(code_id, slot_id, units)
                     WHERE u.slot_id IS NULL
                        OR NOT EXISTS (SELECT 1 FROM capacity.code_slots AS s WHERE s.slot_id = u.slot_id)
                     GROUP BY u.code_id) AS g
             WHERE c.code_id = g.code_id
            RETURNING c.code_id, c.slots, g.n
        LOOP
            IF v_base.slots > 0 THEN
                PERFORM capacity._return_base_units(v_base.code_id, v_base.n);
            END IF;
        END LOOP;
        INSERT INTO capacity.events (kind, code_id, code, pool, holder, claim_id, usage_after, units)
        SELECT 'expired', u.code_id, k.code, k.pool, u.holder, u.claim_id,
               capacity._total_usage(k), u.units
          FROM unnest(v_claim_ids, v_code_ids, v_claim_holders, v_units) AS u(claim_id, code_id, holder, units)
          JOIN capacity.codes AS k ON k.code_id = u.code_id;
        -- One mark per pool, counting its expiries for the dashboard.
        INSERT INTO capacity.pending_changes (codes, pool, expiries)
        SELECT array_agg(DISTINCT k.code), k.pool, count(*)::integer
          FROM unnest(v_code_ids) AS u(code_id)
          JOIN capacity.codes AS k ON k.code_id = u.code_id
         GROUP BY k.pool;
    END IF;

    IF v_expired > 0 THEN
        v_holder_rows := capacity._release_holders(v_pools, v_holders);
    END IF;
    -- more_pending: idle claims another call could end now (codes busy right now excluded):
    -- one beyond the batch, or one of the batch skipped because its row or slot was busy.
    v_more := v_overflow OR EXISTS (SELECT 1 FROM capacity.claims AS k
                                     WHERE k.claim_id = ANY (v_candidates)
                                       AND k.released_at IS NULL
                                       AND (k.lease_expires_at <= now() OR (k.lease IS NULL AND k.last_seen_at < v_cutoff)));
    RETURN ROW(v_expired, v_codes, v_holder_rows, v_more)::capacity.expiry_result;
END
$$;
