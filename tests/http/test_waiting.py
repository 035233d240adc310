"""Waiting claims over HTTP ("wait_ms"), against a real uvicorn socket: served when a unit
comes back, CODE_FULL when none does in time, at most PGCAPACITY_MAX_WAIT_MS, and a
client that disconnects leaves the queue without claiming."""

from __future__ import annotations

import threading

import httpx
import psycopg
import pytest

from tests.support import (
    CLIENT_AUTH,
    assert_error,
    audit,
    live_server,
    reset,
    settings_for,
    wait_for,
)

QUEUED = """
SELECT count(*) FROM pg_locks
 WHERE locktype = 'advisory' AND classid = 1885823859
   AND objid = (SELECT code_id FROM capacity.codes WHERE code = 'Q') AND objsubid = 2"""


@pytest.fixture
def full(db):
    """Code Q with its one unit held by 'first'; yields (db, that claim's id)."""
    reset(db, [{"code": "Q", "max_uses": 1}])
    with psycopg.connect(db, autocommit=True) as conn:
        held = conn.execute("SELECT claim_id FROM capacity.claim('Q', 'first')").fetchone()[0]
    return db, held


def claim(base: str, holder: str, wait_ms: int, timeout: float = 30) -> httpx.Response:
    body = {"holder": holder, "wait_ms": wait_ms}
    return httpx.post(f"{base}/v1/codes/Q/claims", json=body, headers=CLIENT_AUTH, timeout=timeout)


def test_a_waiting_claim_is_served_when_a_unit_comes_back(full):
    db, held = full
    answers = {}
    with live_server(settings_for(db, max_wait_ms=20_000)) as base, psycopg.connect(db) as conn:
        waiter = threading.Thread(target=lambda: answers.update(r=claim(base, "ann", 15_000)))
        waiter.start()
        assert wait_for(lambda: conn.execute(QUEUED).fetchone()[0] == 1)
        conn.execute("SELECT capacity.release(%s::bigint)", (held,))
        conn.commit()
        waiter.join(30)
        assert answers["r"].status_code == 201, answers["r"].text
        assert answers["r"].json()["holder"] == "ann"
        late = claim(base, "bob", 50)
        assert_error(late, "CODE_FULL", 409)  # nothing came back within 50 ms
    audit(db)


def test_a_wait_above_the_servers_maximum_is_shortened_to_it(full):
    db, _ = full
    with live_server(settings_for(db, max_wait_ms=100)) as base:
        error = assert_error(claim(base, "ann", 3_600_000, timeout=20), "CODE_FULL", 409)
        assert error["details"]["code"] == "Q"  # after 100 ms, not an hour


def test_a_client_that_disconnects_leaves_the_queue_and_claims_nothing(full):
    db, held = full
    with live_server(settings_for(db, max_wait_ms=20_000)) as base, psycopg.connect(db) as conn:
        with pytest.raises(httpx.ReadTimeout):
            claim(base, "gone", 15_000, timeout=0.5)  # httpx closes the connection
        assert wait_for(lambda: conn.execute(QUEUED).fetchone()[0] == 0, timeout=5)
        conn.execute("SELECT capacity.release(%s::bigint)", (held,))
        assert conn.execute(
            "SELECT count(*) FROM capacity.claims WHERE holder = 'gone'"
        ).fetchone() == (0,)
        conn.commit()
    audit(db)
