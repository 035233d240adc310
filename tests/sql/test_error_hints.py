"""Every error a caller can meet says what to do: a HINT on every refusal the SQL raises,
and a hint for every name in capacity.error_codes()."""

from __future__ import annotations

import re

import psycopg
import pytest

from pgcapacity import installer
from tests.support import reset

RAISE = re.compile(r"RAISE\s+EXCEPTION\s+'(?:[^']|'')*'[^;]*;")


def test_every_raise_of_a_catalog_error_carries_a_hint():
    seen = 0
    for path in sorted(installer.sql_dir().glob("functions/*.sql")):
        for stmt in RAISE.findall(path.read_text()):
            if not re.search(r"ERRCODE = 'CP0[0-9][0-9]'", stmt) or "CP099" in stmt:
                continue  # internal (caught where raised) or a PostgreSQL error of its own
            seen += 1
            assert "HINT =" in stmt, f"{path.name}: a refusal without a HINT: {stmt[:90]}"
    assert seen > 25, "the pattern must find the RAISE statements"


def test_every_name_in_the_catalog_has_a_hint(conn):
    rows = conn.execute("SELECT name, hint FROM capacity.error_codes()").fetchall()
    assert len(rows) == 18
    assert [name for name, hint in rows if not (hint and hint.strip())] == []


def provoke(conn: psycopg.Connection, blocker: psycopg.Connection) -> dict[str, psycopg.Error]:
    """Raises every error the SQL raises, once; returns them by name."""
    reset(
        conn.info.dsn,
        [
            {"code": "FULL", "max_uses": 0},
            {"code": "OFF", "max_uses": 1, "is_active": False},
            {"code": "OLD", "max_uses": 1, "expires_at": "2000-01-01T00:00:00Z"},
            {"code": "LIMITED", "max_uses": 5, "pool": "reviews"},
            {"code": "BUSY", "max_uses": 5},
            {"code": "HELD", "max_uses": 5},
            {"code": "SPENT", "max_uses": 5, "max_total_claims": 0},
            {"code": "CAPPED", "max_uses": 5, "pool": "capped"},
        ],
    )
    conn.execute("SELECT capacity.set_holder_limit('reviews', 'ann', 0)")
    conn.execute("SELECT capacity.set_pool_limit('capped', 0)")
    conn.execute("SELECT capacity.claim('HELD', 'bob')")
    blocker.execute("SELECT 1 FROM capacity.codes WHERE code = 'BUSY' FOR UPDATE")
    calls = {
        "VALIDATION_ERROR": "SELECT capacity.claim('not a code!', 'ann')",
        "CODE_NOT_FOUND": "SELECT capacity.claim('NOPE', 'ann')",
        "CODE_INACTIVE": "SELECT capacity.claim('OFF', 'ann')",
        "CODE_EXPIRED": "SELECT capacity.claim('OLD', 'ann')",
        "CODE_FULL": "SELECT capacity.claim('FULL', 'ann')",
        "HOLDER_LIMIT_EXCEEDED": "SELECT capacity.claim('LIMITED', 'ann')",
        "CODE_EXHAUSTED": "SELECT capacity.claim('SPENT', 'ann')",
        "POOL_FULL": "SELECT capacity.claim('CAPPED', 'ann')",
        "CLAIM_NOT_FOUND": "SELECT capacity.release(999999, gen_random_uuid())",
        "LOCK_CONTENDED": "SELECT capacity.claim('BUSY', 'ann', 'nowait')",
        "CAPACITY_BELOW_USAGE": """SELECT capacity.upsert_codes('[{"code": "HELD", "max_uses": 0}]')""",
    }
    raised = {}
    for name, sql in calls.items():
        with pytest.raises(psycopg.Error) as caught:
            conn.execute(sql)
        raised[name] = caught.value
    blocker.rollback()
    return raised


def test_every_error_the_sql_raises_carries_a_hint(conn, db):
    with psycopg.connect(db) as blocker:
        raised = provoke(conn, blocker)
    sql_names = {
        name
        for (name,) in conn.execute(
            "SELECT name FROM capacity.error_codes()"
            " WHERE sqlstate BETWEEN 'CP001' AND 'CP009' OR sqlstate > 'CP016'"
        )
    }
    assert set(raised) == sql_names, "provoke() must raise every error the SQL raises"
    for name, err in raised.items():
        assert err.diag.message_primary.startswith(f"{name}: "), (name, str(err))
        assert err.diag.message_hint, f"{name} has no HINT: {err.diag.message_primary}"
