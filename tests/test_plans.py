"""Index access for the hot paths, shown with the real plans of the real functions."""

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
