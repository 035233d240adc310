-- A code's whole usage (its row plus a slotted code's slot rows) and whether it can be
-- claimed now (docs/architecture.md, "Slotted codes").
-- Not granted to application roles; they run with the caller's pinned search_path, so
-- every object is schema-qualified.

-- Why a code with these fields cannot be claimed right now (an error name), or NULL when
-- it can. Fields rather than a row, for queries that compute the usage (usage_batch).
CREATE OR REPLACE FUNCTION capacity._blocker_of(
    p_is_active boolean, p_expires_at timestamptz, p_usage integer, p_max_uses integer,
    p_total_claims integer, p_max_total_claims integer)
RETURNS text
LANGUAGE sql STABLE
AS $$
    SELECT CASE
        WHEN NOT p_is_active THEN 'CODE_INACTIVE'
        WHEN p_expires_at IS NOT NULL AND p_expires_at <= pg_catalog.now() THEN 'CODE_EXPIRED'
        WHEN p_total_claims >= p_max_total_claims THEN 'CODE_EXHAUSTED'
        WHEN p_usage >= p_max_uses THEN 'CODE_FULL'
    END
$$;

-- Why a code cannot be claimed right now (an error name), or NULL when it can.
CREATE OR REPLACE FUNCTION capacity._blocker(c capacity.codes)
RETURNS text
LANGUAGE sql STABLE
AS $$ SELECT capacity._blocker_of(c.is_active, c.expires_at, c.usage_count, c.max_uses, c.total_claims, c.max_total_claims) $$;

-- Units in use in a code's slot rows (0 for a plain code). PL/pgSQL, not SQL: a SQL
-- function with a FROM clause cannot be inlined and is parsed and planned again in every
-- transaction; PL/pgSQL keeps its plan for the session.
CREATE OR REPLACE FUNCTION capacity._slot_usage(p_code_id bigint)
RETURNS integer
LANGUAGE plpgsql STABLE
AS $$
BEGIN
    RETURN (SELECT COALESCE(sum(s.used), 0)::integer FROM capacity.code_slots AS s WHERE s.code_id = p_code_id);
END
$$;

-- A code's whole usage: its row's count plus, for a slotted code, its slot rows.
CREATE OR REPLACE FUNCTION capacity._total_usage(c capacity.codes)
RETURNS integer
LANGUAGE sql STABLE
AS $$
    SELECT c.usage_count + CASE WHEN c.slots > 0 THEN capacity._slot_usage(c.code_id) ELSE 0 END
$$;

-- The code row with usage_count made the code's whole usage (slots included), for
-- status and results. One statement, so the total is from one snapshot.
CREATE OR REPLACE FUNCTION capacity._with_total_usage(c capacity.codes)
RETURNS capacity.codes
LANGUAGE plpgsql STABLE
AS $$
BEGIN
    c.usage_count := capacity._total_usage(c);
    RETURN c;
END
$$;
