"""Over real sockets: the capacity race over HTTP, two coherent instances, the dashboard."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import datetime

import httpx
import psycopg
import pytest

from tests.support import (
    CLIENT_AUTH,
    audit,
    http_workers,
    live_server,
    reset,
    settings_for,
    wait_for,
)

CLIENTS = 64
CAPACITY = 400
ATTEMPTS = 1000


async def _claim_storm(base: str, code: str) -> Counter:
    """64 concurrent HTTP clients make 1000 claims for distinct holders on one code."""

    async def claim(http, i, tally):
        r = await http.post(f"/v1/codes/{code}/claims", json={"holder": f"h{i}"})
        tally[(r.status_code, r.json().get("error", {}).get("code"))] += 1

    return await http_workers(base, ATTEMPTS, CLIENTS, claim)


@pytest.mark.parametrize("lock_mode", ["advisory", "wait", "nowait"])
def test_http_race_on_one_code_gives_exactly_capacity(db, lock_mode):
    reset(db, [{"code": "RACE", "max_uses": CAPACITY}])
    settings = settings_for(db, pool_max=16, lock_mode=lock_mode, pool_timeout_ms=30000)
    with live_server(settings) as base:
        statuses = asyncio.run(_claim_storm(base, "RACE"))
    contended = statuses.pop((503, "LOCK_CONTENDED"), 0)
    assert statuses[(201, None)] == CAPACITY, statuses
    assert statuses[(409, "CODE_FULL")] == ATTEMPTS - CAPACITY - contended, statuses
    assert set(statuses) == {(201, None), (409, "CODE_FULL")}, statuses
    assert audit(db)["usage"] == CAPACITY


def test_a_claim_through_one_instance_is_seen_at_once_through_another(db):
    reset(db, [{"code": "SHARED", "max_uses": 10}])
    # A long TTL: only the NOTIFY from the trigger can make instance B see the claim.
    settings = settings_for(db, cache_ttl_ms=600_000)
    with (
        live_server(settings) as a,
        live_server(settings) as b,
        httpx.Client(headers=CLIENT_AUTH, timeout=10) as http,
    ):
        assert http.get(f"{b}/v1/codes/SHARED").json()["usage_count"] == 0
        usage_b = http.post(f"{b}/v1/usage", json={"codes": ["SHARED"]}).json()
        assert usage_b["codes"][0]["usage_count"] == 0
        assert http.get(f"{b}/v1/codes/SHARED").json()["usage_count"] == 0  # cached now
        claim = http.post(f"{a}/v1/codes/SHARED/claims", json={"holder": "x"})
        assert claim.status_code == 201
        seen = wait_for(lambda: http.get(f"{b}/v1/codes/SHARED").json()["usage_count"] == 1)
        assert seen, "instance B kept serving its cached status"
        usage_b = http.post(f"{b}/v1/usage", json={"codes": ["SHARED"]}).json()
        assert usage_b["codes"][0]["usage_count"] == 1
        stats = http.get(f"{b}/health/detailed").json()
        assert stats["listener"]["notifications"] >= 1
        assert stats["cache"]["hits"] >= 1  # the cache was really in use


def test_direct_sql_writes_reach_the_cache_too(db):
    reset(db, [{"code": "SQLSIDE", "max_uses": 10}])
    with live_server(settings_for(db, cache_ttl_ms=600_000)) as base, httpx.Client() as http:
        assert http.get(f"{base}/v1/codes/SQLSIDE").json()["usage_count"] == 0
        with psycopg.connect(db, autocommit=True) as conn:
            conn.execute("SELECT capacity.claim('SQLSIDE', 'from-sql')")
        assert wait_for(lambda: http.get(f"{base}/v1/codes/SQLSIDE").json()["usage_count"] == 1)


def test_dashboard_catches_up_with_a_burst_of_writes(db):
    reset(db, [{"code": f"D{i}", "max_uses": 5, "pool": f"p{i % 3}"} for i in range(30)])
    settings = settings_for(db, dashboard_refresh_ms=200)
    with live_server(settings) as base, httpx.Client(base_url=base, headers=CLIENT_AUTH) as http:
        with psycopg.connect(db) as conn:
            burst_began = conn.execute("SELECT clock_timestamp()").fetchone()[0]
        for i in range(120):
            http.post(f"/v1/codes/D{i % 30}/claims", json={"holder": f"u{i}"})
        with psycopg.connect(db) as conn:
            expected = conn.execute("""
                SELECT pool, count(*)::int, sum(usage_count)::int, sum(max_uses)::int,
                       count(*) FILTER (WHERE usage_count >= max_uses)::int
                  FROM capacity.codes GROUP BY pool ORDER BY pool""").fetchall()

        def board():
            body = http.get("/v1/dashboard").json()
            rows = [
                (p["pool"], p["codes"], p["units_used"], p["units_total"], p["full_codes"])
                for p in body["pools"]
            ]
            return rows, body["refreshed_at"]

        assert wait_for(lambda: board()[0] == [tuple(r) for r in expected])
        # The board that shows the burst was refreshed during or after it. Not "after the
        # last write": occurred_at is the write transaction's start, and a refresh that
        # began a moment before it may take its snapshot after that write committed.
        _, refreshed_at = board()
        assert datetime.fromisoformat(refreshed_at) >= burst_began
