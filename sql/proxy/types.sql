-- The result types of the capacity.* functions, as on every shard: PL/Proxy matches a
-- shard's result columns to them by name, and callers see the same types through the
-- proxy as on one server (tests/cluster pins them equal to the shards').
CREATE TYPE capacity.end_reason AS ENUM ('released', 'expired', 'revoked');

CREATE TYPE capacity.claim_result AS (
    claim_id bigint, token uuid, code text, holder text, usage_count integer, max_uses integer,
    remaining integer, already_held boolean, claimed_at timestamptz, units integer,
    lease_expires_at timestamptz, fence bigint);

CREATE TYPE capacity.code_status AS (
    code text, found boolean, pool text, is_active boolean, expires_at timestamptz,
    usage_count integer, max_uses integer, remaining integer, can_claim boolean, reason text,
    max_total_claims integer, total_claims integer, remaining_total integer);

CREATE TYPE capacity.claim_info AS (
    claim_id bigint, code text, pool text, holder text, claimed_at timestamptz,
    last_seen_at timestamptz, released_at timestamptz, end_reason capacity.end_reason,
    units integer, lease_expires_at timestamptz);

CREATE TYPE capacity.release_result AS (
    claim_id bigint, code text, holder text, released boolean, usage_count integer,
    remaining integer);

CREATE TYPE capacity.expiry_result AS (
    expired integer, codes_touched integer, holders_touched integer, more_pending boolean);

-- An element of an upsert_codes() document, parsed (capacity._code_specs).
CREATE TYPE capacity._code_spec AS (
    code text, max_uses integer, pool text, has_pool boolean, is_active boolean,
    has_active boolean, expires_at timestamptz, has_expires boolean, metadata jsonb,
    has_metadata boolean, slots integer, has_slots boolean, lease interval, has_lease boolean,
    max_total_claims integer, has_max_total boolean);
