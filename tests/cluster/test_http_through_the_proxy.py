"""The HTTP API with DATABASE_URL pointing at the proxy of a sharded cluster: the same
routes and answers, and cache coherence through the shards' change feeds (the listener
listens on every shard)."""

from __future__ import annotations

import asyncio

import psycopg
import pytest

from tests.support import (
    ADMIN_AUTH,
    CLIENT_AUTH,
    api_client,
    assert_error,
    audit,
    reset,
    settings_for,
)

pytestmark = pytest.mark.anyio
CODES = [{"code": f"ORG{i % 4}-{i}", "max_uses": 2, "pool": f"org{i % 4}"} for i in range(8)]


async def test_the_api_serves_every_shard_through_the_proxy(sharded):
    reset(sharded.proxy, [])
    async with api_client(settings_for(sharded.proxy)) as c:
        r = await c.post("/v1/admin/codes", json={"codes": CODES}, headers=ADMIN_AUTH)
        assert r.status_code == 200 and r.json()["inserted"] == 8, r.text
        claims = []
        for spec in CODES:
            r = await c.post(
                f"/v1/codes/{spec['code']}/claims", json={"holder": "h"}, headers=CLIENT_AUTH
            )
            assert r.status_code == 201, r.text
            claims.append(r.json())
        assert {claim["claim_id"] >> 48 for claim in claims} == {0, 1}, "both shards took claims"
        again = await c.post("/v1/codes/ORG1-1/claims", json={"holder": "h"}, headers=CLIENT_AUTH)
        assert again.status_code == 200 and again.json()["already_held"] is True
        listed = (await c.get("/v1/claims", params={"limit": 5}, headers=CLIENT_AUTH)).json()
        rest = (
            await c.get("/v1/claims", params={"after": listed["next"]}, headers=CLIENT_AUTH)
        ).json()
        ids = [x["claim_id"] for x in listed["claims"] + rest["claims"]]
        assert ids == sorted(claim["claim_id"] for claim in claims) and rest["next"] is None
        codes = (await c.get("/v1/codes", params={"pool": "org2"}, headers=CLIENT_AUTH)).json()[
            "codes"
        ]
        assert [x["code"] for x in codes] == ["ORG2-2", "ORG2-6"]
        usage = (await c.post("/v1/usage", json={"codes": ["ORG3-7", "ORG0-0", "NONE"]})).json()
        assert [(x["code"], x["usage_count"]) for x in usage["codes"]] == [
            ("ORG3-7", 1),
            ("ORG0-0", 1),
            ("NONE", None),
        ]
        r = await c.post("/v1/admin/dashboard/refresh", headers=ADMIN_AUTH)
        assert r.status_code == 200, r.text
        dashboard = (await c.get("/v1/dashboard")).json()
        assert sum(p["units_used"] for p in dashboard["pools"]) == 8
        for claim in claims:
            token = {"X-Claim-Token": claim["token"]} | CLIENT_AUTH
            hb = await c.post(f"/v1/claims/{claim['claim_id']}/heartbeat", headers=token)
            assert hb.status_code == 200, hb.text
            rel = await c.delete(f"/v1/claims/{claim['claim_id']}", headers=token)
            assert rel.status_code == 200 and rel.json()["released"] is True
        missing = await c.post("/v1/codes/NOPE/claims", json={"holder": "h"}, headers=CLIENT_AUTH)
        assert_error(missing, "CODE_NOT_FOUND", 404)
        events = await c.get("/v1/events", headers=CLIENT_AUTH)
        assert_error(events, "NOT_FOUND", 404)
        health = (await c.get("/health/detailed")).json()
        assert health["status"] == "healthy" and health["listener"]["connected"], health
    assert audit(sharded.proxy)["usage"] == 0


async def test_a_write_through_another_client_reaches_the_api_cache(sharded):
    """A claim made by another client of the proxy (not this API) drops the API's cached
    status of that code on whichever shard holds it."""
    reset(sharded.proxy, CODES)
    settings = settings_for(sharded.proxy, cache_ttl_ms=600_000, change_feed_ms=20)
    async with api_client(settings) as c:
        # Polled: the app's loop is not the test's, an Event would not wake this waiter.
        for _ in range(3000):
            if c.app.state.listener.connected.is_set():
                break
            await asyncio.sleep(0.01)
        assert c.app.state.listener.sessions == 2
        for spec in CODES:
            assert (await c.get(f"/v1/codes/{spec['code']}")).json()["usage_count"] == 0
        with psycopg.connect(sharded.proxy, autocommit=True) as conn:
            for spec in CODES:
                conn.execute("SELECT 1 FROM capacity.claim(%s, 'elsewhere')", (spec["code"],))
        for spec in CODES:
            for _ in range(1000):  # the publisher runs every 20 ms; wait for its notification
                status = (await c.get(f"/v1/codes/{spec['code']}")).json()
                if status["usage_count"] == 1:
                    break
                await asyncio.sleep(0.01)
            assert status["usage_count"] == 1, spec["code"]
