-- 0017: pool caps. A pool may cap the units in use across all of its codes. The count is
-- striped over a few rows, whose caps add up to max_units, so that claims on different
-- codes of one pool do not all queue on one row lock until they commit.
CREATE TABLE capacity.pool_limits (
    pool       text        PRIMARY KEY,
    max_units  integer     NOT NULL,
    stripes    integer     NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT pool_limits_pool_format CHECK (pool ~ '^[A-Za-z0-9_.-]{1,64}$'),
    CONSTRAINT pool_limits_max_units_nonnegative CHECK (max_units >= 0),
    CONSTRAINT pool_limits_stripes_range CHECK (stripes BETWEEN 1 AND 64)
);
COMMENT ON TABLE capacity.pool_limits IS
    'Pools whose units in use across all their codes are capped (capacity.set_pool_limit).';

-- The units in use of a capped pool, spread over `stripes` rows: a claim takes its units
-- from one stripe with room, a release gives them back to any stripe holding as many.
CREATE TABLE capacity.pool_stripes (
    pool   text    NOT NULL REFERENCES capacity.pool_limits ON DELETE CASCADE,
    stripe integer NOT NULL,
    cap    integer NOT NULL,
    used   integer NOT NULL DEFAULT 0,
    PRIMARY KEY (pool, stripe),
    CONSTRAINT pool_stripes_used_within_cap CHECK (used >= 0 AND used <= cap)
);
COMMENT ON TABLE capacity.pool_stripes IS
    'Striped unit counters of capped pools: sum(cap) = max_units, sum(used) = the units in use.';
