-- Marks an active claim as alive (last_seen_at = now()) so idle expiry leaves it alone,
-- and renews its lease by the lease's length. A claim past its lease is not renewed:
-- CLAIM_NOT_FOUND, as for an ended one.
CREATE OR REPLACE FUNCTION capacity.heartbeat(claim_id bigint, token uuid DEFAULT NULL)
RETURNS timestamptz
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    v_seen timestamptz;
BEGIN
    UPDATE capacity.claims AS k
       SET last_seen_at = now(), lease_expires_at = now() + k.lease
     WHERE k.claim_id = heartbeat.claim_id
       AND k.released_at IS NULL
       AND (k.lease_expires_at IS NULL OR k.lease_expires_at > now())
       AND k.token = COALESCE(heartbeat.token, k.token)
    RETURNING k.last_seen_at INTO v_seen;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'CLAIM_NOT_FOUND: no active claim % with this token', heartbeat.claim_id
            USING ERRCODE = 'CP007', DETAIL = jsonb_build_object('claim_id', heartbeat.claim_id)::text,
                  HINT = 'The claim was released, expired or revoked; claim again.';
    END IF;
    RETURN v_seen;
END
$$;
