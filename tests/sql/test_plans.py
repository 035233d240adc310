"""Index access for the hot paths, shown with the real plans of the real functions, and no
SQL helper run as a call (parsed and planned again in every transaction) on them."""

from __future__ import annotations

import psycopg
import pytest


@pytest.fixture(scope="module")
def big(db: str) -> str:
    """100 000 codes (one statement), some claims and holder limits, fresh statistics."""
    with psycopg.connect(db, autocommit=True) as conn:
        conn.execute(
            "SELECT capacity.upsert_codes(jsonb_agg(jsonb_build_object("
            "'code', 'C' || i, 'max_uses', 400, 'pool', 'p' || (i % 10)))) FROM generate_series(1, 100000) i"
        )
        conn.execute("SELECT capacity.claim('C' || i, 'h' || i) FROM generate_series(1, 2000) i")
        # History: ended claims outnumber active ones, as they do once a system has run.
        conn.execute(
            "INSERT INTO capacity.claims (code_id, pool, holder, released_at, end_reason)"
            " SELECT code_id, pool, 'old' || code_id, now(), 'released' FROM capacity.codes"
            " WHERE code_id % 5 = 0"
        )
        # Only holders with a limit have a counter row.
        conn.execute(
            "SELECT capacity.set_holder_limit('p' || (i % 10), 'h' || i, 5) FROM generate_series(1, 4000) i"
        )
        conn.execute("ANALYZE")
    return db


def nested_plans(conninfo: str, call: str) -> str:
    """Every plan executed inside `call`, captured with auto_explain at NOTICE level."""
    notices: list[str] = []
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.add_notice_handler(lambda diag: notices.append(diag.message_primary or ""))
        conn.execute("LOAD 'auto_explain'")
        conn.execute("SET auto_explain.log_min_duration = 0")
        conn.execute("SET auto_explain.log_nested_statements = on")
        conn.execute("SET auto_explain.log_level = notice")
        conn.execute(call)
    return "\n".join(notices)


@pytest.mark.parametrize(
    "call",
    [
        "SELECT * FROM capacity.check('C77777')",
        "SELECT * FROM capacity.claim('C88888', 'someone')",
        "SELECT * FROM capacity.claim('C88889', 'someone', 'nowait')",
        "SELECT * FROM capacity.claim('C5', 'h5')",  # already held
        "SELECT * FROM capacity.release('C12', 'h12')",
        "SELECT * FROM capacity.usage_batch(ARRAY['C1', 'C99999', 'NOPE'])",
    ],
)
def test_hot_paths_use_indexes_not_sequential_scans(big, call):
    plans = nested_plans(big, call)
    assert "Index" in plans, plans
    assert "Seq Scan on codes" not in plans, plans
    assert "Seq Scan on claims" not in plans, plans
    assert "Seq Scan on holders" not in plans, plans


def test_expiry_scans_only_the_active_claims(big):
    """No index on last_seen_at (heartbeats stay HOT): expiry reads the active claims
    through the partial one-active-claim index, never the ended claims."""
    plans = nested_plans(big, "SELECT * FROM capacity.expire_idle_claims('1 hour')")
    assert "claims_one_active_per_holder" in plans, plans
    assert "Seq Scan on claims" not in plans, plans


# Each call of the public functions' hot paths, as applications make them. {i} makes each
# round's claims new ones.
HOT_CALLS = [
    "SELECT * FROM capacity.check('C7')",
    "SELECT * FROM capacity.usage_batch(ARRAY['C1', 'C2', 'NOPE'])",
    "SELECT * FROM capacity.release((capacity.claim('C3', 'a{i}')).claim_id)",
    "SELECT * FROM capacity.release((capacity.claim('C4', 'b{i}', 'nowait')).claim_id)",
    "SELECT * FROM capacity.release((capacity.claim('C5', 'c{i}', 'wait')).claim_id)",
    "SELECT * FROM capacity.release((capacity.claim('SLOTTED', 'd{i}')).claim_id)",
    "SELECT * FROM capacity.claim('C6', 'h1')",  # already held after the first round
    "SELECT * FROM capacity.heartbeat((capacity.claim('C6', 'h1')).claim_id)",
    "SELECT * FROM capacity.release((capacity.claim('C8', 'h1')).claim_id)",  # limited holder
    "SELECT * FROM capacity.release('C9', 'nobody')",
    "SELECT * FROM capacity.release('C10', (capacity.claim('C10', 'e{i}')).holder)",
    "SELECT count(*) FROM capacity.expire_idle_claims('1 hour')",
    "SELECT capacity.publish_changes()",
]


def sql_function_calls(conn: psycopg.Connection) -> dict[str, int]:
    """Calls so far in this transaction of LANGUAGE sql functions that ran as calls."""
    rows = conn.execute(
        "SELECT f.funcname, f.calls FROM pg_stat_xact_user_functions f"
        "  JOIN pg_proc p ON p.oid = f.funcid JOIN pg_language l ON l.oid = p.prolang"
        " WHERE l.lanname = 'sql'"
    ).fetchall()
    return dict(rows)


def test_hot_paths_run_no_sql_helper_as_a_call(big):
    """A SQL helper that PostgreSQL does not inline (say, an argument that is a function
    call, for a parameter used twice) runs through the SQL-function executor, which parses
    and plans its body again in every transaction: capacity.check() once spent half its
    time so. With track_functions = 'all' PostgreSQL counts exactly those calls (inlined
    functions never run as calls). The first rounds plan each statement with its values
    (the plan cache's custom plans, whose planning folds the constant helpers by calling
    them once); after them, no round may call a SQL helper."""
    with psycopg.connect(big) as conn:
        conn.execute("SET track_functions = 'all'")
        conn.execute(
            'SELECT capacity.upsert_codes(\'[{"code": "SLOTTED", "max_uses": 50, "slots": 4}]\')'
        )
        conn.execute("SELECT capacity.set_holder_limit('p8', 'h1', 2)")
        for i in range(8):  # past the plan cache's five custom plans
            for call in HOT_CALLS:
                conn.execute(call.format(i=i))
        before = sql_function_calls(conn)
        for i in range(8, 11):
            for call in HOT_CALLS:
                conn.execute(call.format(i=i))
        assert sql_function_calls(conn) == before
        conn.rollback()
