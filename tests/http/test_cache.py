"""The read cache under concurrent misses: one database read per key, and never a value
older than a write this instance has heard of."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from pgcapacity.background import CHANNEL
from tests.support import api_client, reset, settings_for

pytestmark = pytest.mark.anyio
READERS = 50


@pytest.fixture
def cachedb(db):
    reset(db, [{"code": "HOT-READ", "max_uses": 10}])
    return db


def _quiet_settings(db: str, **overrides):
    """The cache on, and the background tasks' pool use out of the way after their first
    round (next one in ten minutes)."""
    return settings_for(
        db,
        cache_ttl_ms=600_000,
        change_feed_ms=600_000,
        dashboard_refresh_ms=600_000,
        hot_claims_per_min=0,
        **overrides,
    )


async def _after_first_background_round(app) -> None:
    """Until the background tasks' first round is done and everything it notified has been
    heard: the listener's connect and the first round's notifications (the reset's
    TRUNCATE publishes '*') clear the cache, and one landing mid-test would make every
    waiter read for itself. Notifications arrive in commit order, so once a marker sent
    now has been heard, so have they."""
    while app.state.publisher.last_result is None or app.state.refresher.last_result is None:
        await asyncio.sleep(0.01)
    # Polled, like the rest: the app runs in the test client's portal thread, and an
    # asyncio.Event set from another loop does not wake a waiter here.
    while not app.state.listener.connected.is_set():
        await asyncio.sleep(0.01)
    cache, marker = app.state.cache, f"MARKER-{uuid.uuid4().hex}"
    ticket = cache.ticket()
    async with app.state.pool.connection() as conn:
        await conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, marker))
    while cache.still_fresh([marker], ticket):
        await asyncio.sleep(0.01)


def _pool_requests(app) -> int:
    return app.state.pool.get_stats().get("requests_num", 0)


async def test_concurrent_misses_of_one_code_share_one_database_read(cachedb):
    async with api_client(_quiet_settings(cachedb)) as c:
        await _after_first_background_round(c.app)
        service = c.app.state.service  # the test client sends one request at a time
        before = _pool_requests(c.app)
        answers = await asyncio.gather(*(service.check("HOT-READ") for _ in range(READERS)))
        assert [a.remaining for a in answers] == [10] * READERS
        assert _pool_requests(c.app) - before == 1


async def test_a_miss_after_a_write_does_not_take_the_read_begun_before_it(cachedb):
    async with api_client(_quiet_settings(cachedb, pool_max=1, pool_min=1)) as c:
        await _after_first_background_round(c.app)
        service, pool = c.app.state.service, c.app.state.pool
        before = _pool_requests(c.app)
        async with pool.connection():  # the only connection: the first read waits for it
            first = asyncio.create_task(service.check("HOT-READ"))
            while pool.get_stats().get("requests_waiting", 0) < 1:
                await asyncio.sleep(0.01)
            service.cache.invalidate(["HOT-READ"])  # a write heard while it is under way
            second = asyncio.create_task(service.check("HOT-READ"))
            await asyncio.sleep(0)  # one loop turn: the second runs up to its first wait
        await asyncio.gather(first, second)
        # The second waited for the first read, found it older than the write, read again.
        assert _pool_requests(c.app) - before - 1 == 2  # (this test's own connection: 1)
