"""The API expires idle claims by itself (PGCAPACITY_EXPIRE_IDLE), with no cron, and two
instances doing so at once end each idle claim exactly once."""

from __future__ import annotations

import asyncio

import psycopg
import pytest

from pgcapacity.settings import Settings
from tests.support import CLIENT_AUTH, api_client, audit, reset, settings_for, wait_for

pytestmark = pytest.mark.anyio


def active_claims(db: str) -> int:
    with psycopg.connect(db) as conn:
        return conn.execute(
            "SELECT count(*) FROM capacity.claims WHERE released_at IS NULL"
        ).fetchone()[0]


async def wait_until(condition, timeout: float = 30.0) -> bool:
    """wait_for without blocking the event loop the app's background tasks run on."""
    return await asyncio.to_thread(wait_for, condition, timeout)


async def test_a_claim_idle_past_the_setting_ends_by_itself(db):
    reset(db, [{"code": "IDLE", "max_uses": 3}])
    settings = settings_for(db, expire_idle=True, expire_idle_seconds=1, expire_every_ms=100)
    async with api_client(settings) as c:
        claim = await c.post("/v1/codes/IDLE/claims", json={"holder": "ann"}, headers=CLIENT_AUTH)
        assert claim.status_code == 201
        assert await wait_until(lambda: active_claims(db) == 0), "the idle claim never ended"
        with psycopg.connect(db) as conn:
            reason = conn.execute(
                "SELECT end_reason FROM capacity.claims WHERE claim_id = %s",
                (claim.json()["claim_id"],),
            ).fetchone()
        assert reason == ("expired",)
        health = (await c.get("/health/detailed")).json()["idle_expiry"]
        assert health["enabled"] and health["idle_seconds"] == 1 and health["failures"] == 0
    assert audit(db)["usage"] == 0


async def test_two_instances_expire_every_idle_claim_exactly_once(db):
    reset(db, [{"code": f"MANY-{i}", "max_uses": 100} for i in range(30)])
    with psycopg.connect(db, autocommit=True) as conn:
        conn.execute("""
            SELECT capacity.claim('MANY-' || i % 30, 'holder-' || i)
              FROM generate_series(0, 2499) AS i""")
        conn.execute("UPDATE capacity.claims SET last_seen_at = now() - interval '2 hours'")
    settings = settings_for(db, expire_idle=True, expire_idle_seconds=3600, expire_every_ms=50)
    async with api_client(settings) as one, api_client(settings) as two:
        assert await wait_until(lambda: active_claims(db) == 0)
        runs = [(await c.get("/health/detailed")).json()["idle_expiry"] for c in (one, two)]
    assert [r["failures"] for r in runs] == [0, 0]
    with psycopg.connect(db) as conn:
        expired = conn.execute(
            "SELECT count(*), count(DISTINCT claim_id) FROM capacity.events WHERE kind = 'expired'"
        ).fetchone()
    assert expired == (2500, 2500)
    assert audit(db)["usage"] == 0


async def test_off_runs_no_expiry(db):
    reset(db, [{"code": "KEPT", "max_uses": 1}])
    settings = Settings.from_env({"PGCAPACITY_EXPIRE_IDLE": "off"}, database_url=db)
    assert not settings.expire_idle
    async with api_client(settings) as c:
        health = (await c.get("/health/detailed")).json()["idle_expiry"]
        assert health == {"enabled": False, "idle_seconds": None, "last_run": None, "failures": 0}
