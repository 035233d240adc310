-- 0012: the row capacity.get_claim() and capacity.list_claims() return: a claim as a
-- caller may see it, without its token (the secret that release and heartbeat check).
CREATE TYPE capacity.claim_info AS (
    claim_id     bigint,
    code         text,
    pool         text,
    holder       text,
    claimed_at   timestamptz,
    last_seen_at timestamptz,
    released_at  timestamptz,
    end_reason   capacity.end_reason
);
COMMENT ON TYPE capacity.claim_info IS
    'A claim without its token: active while released_at is null.';
