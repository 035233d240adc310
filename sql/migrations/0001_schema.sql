-- 0001: the capacity schema: codes, holders, claims, events.
--
-- Lock order, used by every function (docs/architecture.md, "Lock order"):
--   1. code rows (by code_id when several), 2. claim rows, 3. holder rows (by pool, holder).
-- Functions that touch several codes or holders lock them in that sorted order.

CREATE TYPE capacity.end_reason AS ENUM ('released', 'expired', 'revoked');

CREATE TYPE capacity.event_kind AS ENUM ('claimed', 'released', 'expired', 'revoked', 'reconciled');

-- A capacity-limited resource: an access code, a bill, a seat, a licence.
CREATE TABLE capacity.codes (
    code_id     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    code        text        NOT NULL,
    pool        text        NOT NULL DEFAULT 'default',
    max_uses    integer     NOT NULL,
    usage_count integer     NOT NULL DEFAULT 0,
    is_active   boolean     NOT NULL DEFAULT true,
    expires_at  timestamptz,
    metadata    jsonb       NOT NULL DEFAULT '{}',
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT codes_code_key UNIQUE (code),
    CONSTRAINT codes_code_format CHECK (code ~ '^[A-Z0-9_-]{1,64}$'),
    CONSTRAINT codes_pool_format CHECK (pool ~ '^[A-Za-z0-9_.-]{1,64}$'),
    CONSTRAINT codes_max_uses_nonnegative CHECK (max_uses >= 0),
    CONSTRAINT codes_usage_within_capacity CHECK (usage_count >= 0 AND usage_count <= max_uses),
    CONSTRAINT codes_metadata_is_object CHECK (jsonb_typeof(metadata) = 'object')
);
COMMENT ON TABLE capacity.codes IS
    'Capacity-limited resources. usage_count always equals the number of active claims.';

-- One row per (pool, holder) that ever claimed or has a limit: the per-pool claim counter.
CREATE TABLE capacity.holders (
    pool          text        NOT NULL,
    holder        text        NOT NULL,
    active_claims integer     NOT NULL DEFAULT 0,
    max_claims    integer,
    updated_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (pool, holder),
    CONSTRAINT holders_holder_length CHECK (char_length(holder) BETWEEN 1 AND 256),
    CONSTRAINT holders_max_claims_nonnegative CHECK (max_claims >= 0),
    CONSTRAINT holders_active_within_limit
        CHECK (active_claims >= 0 AND (max_claims IS NULL OR active_claims <= max_claims))
);
COMMENT ON TABLE capacity.holders IS
    'Per-pool claim counters and optional limits (max_claims NULL = unlimited).';

-- One holder using one unit of one code. Ended claims are kept (ids are never reused).
CREATE TABLE capacity.claims (
    claim_id     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    code_id      bigint      NOT NULL REFERENCES capacity.codes (code_id),
    pool         text        NOT NULL,
    holder       text        NOT NULL,
    token        uuid        NOT NULL DEFAULT gen_random_uuid(),
    claimed_at   timestamptz NOT NULL DEFAULT now(),
    last_seen_at timestamptz NOT NULL DEFAULT now(),
    released_at  timestamptz,
    end_reason   capacity.end_reason,
    CONSTRAINT claims_holder_length CHECK (char_length(holder) BETWEEN 1 AND 256),
    CONSTRAINT claims_end_consistent CHECK ((released_at IS NULL) = (end_reason IS NULL))
);
COMMENT ON TABLE capacity.claims IS
    'Claims (sessions). Active while released_at IS NULL; pool is the code''s pool at claim time.';

-- At most one active claim per (code, holder); also the "active claims of a code" path.
CREATE UNIQUE INDEX claims_one_active_per_holder
    ON capacity.claims (code_id, holder) WHERE released_at IS NULL;
-- Active claims of a holder in a pool (holder_usage, reconcile).
CREATE INDEX claims_active_by_holder
    ON capacity.claims (pool, holder) WHERE released_at IS NULL;
-- The idle-claim scan of expire_idle_claims.
CREATE INDEX claims_active_by_last_seen
    ON capacity.claims (last_seen_at) WHERE released_at IS NULL;
-- Retention of ended claims.
CREATE INDEX claims_ended_at
    ON capacity.claims (released_at) WHERE released_at IS NOT NULL;

-- Append-only audit log: every claim, release, expiry, revoke and repair.
CREATE TABLE capacity.events (
    event_id    bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    occurred_at timestamptz NOT NULL DEFAULT now(),
    kind        capacity.event_kind NOT NULL,
    code_id     bigint      NOT NULL,
    code        text        NOT NULL,
    pool        text        NOT NULL,
    holder      text,
    claim_id    bigint,
    usage_after integer     NOT NULL
);
COMMENT ON TABLE capacity.events IS 'Audit history; pruned by capacity.prune_events().';

-- Time-range scans over an append-only log: BRIN is tiny and fits insertion order.
CREATE INDEX events_occurred_at ON capacity.events USING brin (occurred_at);
CREATE INDEX events_code_time ON capacity.events (code_id, occurred_at);

-- The composite returned by check() and usage_batch().
CREATE TYPE capacity.code_status AS (
    code        text,
    found       boolean,
    pool        text,
    is_active   boolean,
    expires_at  timestamptz,
    usage_count integer,
    max_uses    integer,
    remaining   integer,
    can_claim   boolean,
    reason      text
);

-- The row returned by claim().
CREATE TYPE capacity.claim_result AS (
    claim_id     bigint,
    token        uuid,
    code         text,
    holder       text,
    usage_count  integer,
    max_uses     integer,
    remaining    integer,
    already_held boolean,
    claimed_at   timestamptz
);

-- The row returned by both forms of release().
CREATE TYPE capacity.release_result AS (
    claim_id    bigint,
    code        text,
    holder      text,
    released    boolean,
    usage_count integer,
    remaining   integer
);

-- The row returned by expire_idle_claims().
CREATE TYPE capacity.expiry_result AS (
    expired         integer,
    codes_touched   integer,
    holders_touched integer,
    more_pending    boolean
);

-- One validated element of upsert_codes()' input (private). has_* tell an absent key
-- (keep the stored value) from a key set to null.
CREATE TYPE capacity._code_spec AS (
    code         text,
    max_uses     integer,
    pool         text,
    has_pool     boolean,
    is_active    boolean,
    has_active   boolean,
    expires_at   timestamptz,
    has_expires  boolean,
    metadata     jsonb,
    has_metadata boolean
);

-- Roles given application access with capacity.grant_app_access(); the installer renews
-- their grants after every upgrade so new functions are covered.
CREATE TABLE capacity.app_roles (
    role_name  name        PRIMARY KEY,
    granted_at timestamptz NOT NULL DEFAULT now()
);
