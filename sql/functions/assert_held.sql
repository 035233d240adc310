-- Fencing in the holder's own transaction: succeeds only while the claim is active (its
-- token matching, its lease running) and keeps it so until the caller's transaction ends:
-- a release, revoke or heartbeat of it waits for that transaction, idle and lease expiry
-- skip it. Returns the claim's fence. CLAIM_NOT_FOUND otherwise, so a holder whose claim
-- ended (a zombie past its lease) fails in the same transaction as the write it guards.
-- Call it after the transaction's claims and releases on the same code: a release of this
-- claim by someone else locks the code row before the claim row (the lock order).
CREATE OR REPLACE FUNCTION capacity.assert_held(claim_id bigint, token uuid DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_id bigint;
BEGIN
    -- FOR SHARE conflicts with the row lock every end of a claim takes; the lease is
    -- judged by the clock, not the transaction's start, which may be long past.
    SELECT k.claim_id INTO v_id
      FROM capacity.claims AS k
     WHERE k.claim_id = assert_held.claim_id
       AND k.released_at IS NULL
       AND k.token = COALESCE(assert_held.token, k.token)
       AND (k.lease_expires_at IS NULL OR k.lease_expires_at > pg_catalog.clock_timestamp())
       FOR SHARE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'CLAIM_NOT_FOUND: claim % is not held (ended, past its lease, or another token)',
                        assert_held.claim_id
            USING ERRCODE = 'CP007', DETAIL = pg_catalog.jsonb_build_object('claim_id', assert_held.claim_id)::text,
                  HINT = 'The claim is no longer yours: roll back the work it guarded and claim again.';
    END IF;
    RETURN v_id;  -- its fence
END
$$;
