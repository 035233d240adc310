"""GET /v1/events against a real uvicorn socket: every committed claim, release, expiry
and revoke arrives once, in delivery order, and a stream resumed with Last-Event-ID
misses none, even of a transaction that committed after later events were delivered."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator

import httpx
import psycopg
import pytest

from pgcapacity import events
from tests.support import (
    CLIENT_AUTH,
    assert_error,
    live_server,
    reset,
    run_concurrently,
    settings_for,
    wait_for,
)

OPEN: list[Stream] = []  # closed by the served fixture, before its server stops


class Stream:
    """A reader of one SSE stream in a thread: `events` fills as events arrive."""

    def __init__(self, base: str, headers: dict | None = None, params: dict | None = None):
        OPEN.append(self)
        self.events: list[dict] = []
        self.opened = threading.Event()
        self._stop = threading.Event()
        self._args = (f"{base}/v1/events", CLIENT_AUTH | (headers or {}), params or {})
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()
        assert self.opened.wait(30), "the stream did not open"

    def _read(self) -> None:
        url, headers, params = self._args
        with httpx.stream("GET", url, headers=headers, params=params, timeout=60) as response:
            assert response.status_code == 200, response.read()
            assert response.headers["content-type"].startswith("text/event-stream")
            self.opened.set()
            for event in _parse(response.iter_lines(), self._stop):
                self.events.append(event)

    def kinds(self) -> list[str]:
        return [f"{e['event']} {e['data']['holder']}" for e in self.events]

    def close(self) -> None:
        """Closes the connection at the next line (the served fixture makes keep-alive
        comments come about every second), as a client that goes away does."""
        self._stop.set()
        self._thread.join(30)
        if self in OPEN:
            OPEN.remove(self)
        assert not self._thread.is_alive()


def _parse(lines: Iterator[str], stop: threading.Event) -> Iterator[dict]:
    fields: dict = {}
    for line in lines:
        if stop.is_set():
            return
        if line == "":
            if "data" in fields:
                yield {
                    "id": int(fields["id"]),
                    "event": fields["event"],
                    "data": json.loads(fields["data"]),
                }
            fields = {}
        elif not line.startswith(":"):
            name, _, value = line.partition(":")
            fields[name] = value.removeprefix(" ")


def sql(db: str, statement: str, params: tuple = ()) -> tuple | None:
    with psycopg.connect(db, autocommit=True) as conn:
        cur = conn.execute(statement, params)
        return cur.fetchone() if cur.description else None


@pytest.fixture
def served(db, monkeypatch):
    monkeypatch.setattr(events, "KEEPALIVE_SECONDS", 0.1)  # the app runs in this process
    reset(
        db, [{"code": "FEED", "max_uses": 3}, {"code": "OTHER", "pool": "elsewhere", "max_uses": 3}]
    )
    with live_server(settings_for(db)) as base:
        try:
            yield db, base
        finally:
            while OPEN:
                OPEN.pop().close()


def test_claims_releases_expiries_and_revokes_arrive_as_they_commit(served):
    db, base = served
    stream = Stream(base)
    first = sql(db, "SELECT claim_id FROM capacity.claim('FEED', 'ann', units => 2)")[0]
    sql(db, "SELECT capacity.claim('FEED', 'bob')")
    sql(db, "SELECT capacity.release(%s::bigint)", (first,))
    sql(
        db,
        "UPDATE capacity.claims SET last_seen_at = now() - interval '1 hour' WHERE holder = 'bob'",
    )
    sql(db, "SELECT capacity.expire_idle_claims(interval '1 minute')")
    sql(db, "SELECT capacity.claim('FEED', 'cy')")
    sql(db, "SELECT capacity.revoke_code('FEED')")
    expected = [
        "claimed ann",
        "claimed bob",
        "released ann",
        "expired bob",
        "claimed cy",
        "revoked cy",
    ]
    assert wait_for(lambda: len(stream.events) >= len(expected)), stream.kinds()
    stream.close()
    assert stream.kinds() == expected
    claimed = stream.events[0]
    assert claimed["data"] | {"occurred_at": None} == {
        "event_id": claimed["id"],
        "occurred_at": None,
        "kind": "claimed",
        "code": "FEED",
        "pool": "default",
        "holder": "ann",
        "claim_id": first,
        "units": 2,
        "usage_after": 2,
    }
    ids = [e["id"] for e in stream.events]
    logged = [
        r[0]
        for r in psycopg.connect(db).execute(
            "SELECT event_id FROM capacity.events ORDER BY event_id"
        )
    ]
    assert sorted(ids) == logged  # every event of the log, once


def test_a_stream_resumes_after_its_last_event_id_and_filters(served):
    db, base = served
    for holder in ("a", "b", "c"):
        sql(db, "SELECT capacity.claim('FEED', %s)", (holder,))
    sql(db, "SELECT capacity.claim('OTHER', 'z')")
    ids = [
        r[0]
        for r in psycopg.connect(db).execute(
            "SELECT event_id FROM capacity.events ORDER BY event_id"
        )
    ]
    resumed = Stream(base, headers={"Last-Event-ID": str(ids[0])})
    assert wait_for(lambda: len(resumed.events) >= 3)
    resumed.close()
    assert resumed.kinds() == ["claimed b", "claimed c", "claimed z"]
    only = Stream(base, params={"after": "0", "pool": "elsewhere"})
    assert wait_for(lambda: len(only.events) >= 1)
    sql(db, "SELECT capacity.release('OTHER', 'z')")
    assert wait_for(lambda: len(only.events) >= 2)
    only.close()
    assert only.kinds() == ["claimed z", "released z"]


def test_an_event_committed_after_later_ones_is_not_skipped(served):
    db, base = served
    stream = Stream(base)
    with psycopg.connect(db) as slow:
        slow.execute("SELECT capacity.claim('FEED', 'slow')")  # the lower event id, not committed
        sql(db, "SELECT capacity.claim('OTHER', 'fast')")  # another code: no lock to wait for
        assert not wait_for(lambda: stream.events, timeout=1.5)  # held back behind 'slow'
        slow.commit()
    assert wait_for(lambda: len(stream.events) >= 2)
    stream.close()
    assert stream.kinds() == ["claimed slow", "claimed fast"]
    assert stream.events[0]["id"] < stream.events[1]["id"]


def test_many_writers_every_event_arrives_exactly_once(served):
    db, base = served
    reset(db, [{"code": f"C{i}", "max_uses": 64} for i in range(8)])
    stream = Stream(base)

    def work(i: int, conn: psycopg.Connection) -> None:
        conn.autocommit = True
        for n in range(10):
            code = f"C{(i + n) % 8}"
            row = conn.execute(
                "SELECT claim_id FROM capacity.claim(%s, %s)", (code, f"h{i}")
            ).fetchone()
            conn.execute("SELECT capacity.release(%s::bigint)", (row[0],))

    run_concurrently(db, 32, work)
    with psycopg.connect(db) as conn:
        logged = [
            r[0] for r in conn.execute("SELECT event_id FROM capacity.events ORDER BY event_id")
        ]
    assert len(logged) == 32 * 10 * 2
    assert wait_for(lambda: len(stream.events) >= len(logged), timeout=30), len(stream.events)
    stream.close()
    assert sorted(e["id"] for e in stream.events) == logged


def test_the_stream_needs_a_token_and_a_known_event_id(served):
    db, base = served
    assert_error(httpx.get(f"{base}/v1/events"), "UNAUTHORIZED", 401)
    sql(db, "SELECT capacity.claim('FEED', 'a')")
    newest = sql(db, "SELECT max(event_id) FROM capacity.events")[0]
    bad = httpx.get(f"{base}/v1/events", headers=CLIENT_AUTH | {"Last-Event-ID": str(newest + 100)})
    assert_error(bad, "VALIDATION_ERROR", 400)
    junk = httpx.get(f"{base}/v1/events", headers=CLIENT_AUTH | {"Last-Event-ID": "soon"})
    assert_error(junk, "VALIDATION_ERROR", 400)
