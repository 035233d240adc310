"""Background work of a running API: hearing other instances' writes, refreshing the dashboard
(docs/architecture.md, "Cache and change feed" and "Dashboard").

* The listener holds one dedicated session (LISTEN cannot live in a pooled connection) on
  channel ``pgcapacity_changes``; the codes trigger sends the changed codes there. After a
  lost connection the whole cache is dropped (notifications may have been missed) and the
  listener reconnects with capped backoff. On the proxy of a sharded cluster it listens
  on every shard instead (the shards notify; the proxy's publish_changes runs theirs).
* The publisher calls ``capacity.publish_changes()`` every PGCAPACITY_CHANGE_FEED_MS: it turns
  the marks the codes trigger left into NOTIFYs (writes do not notify themselves: that
  would serialize every commit, see migration 0003). A cheap no-op when nothing changed;
  with several instances one publishes and the others get 'busy'.
* The refresher calls ``capacity.refresh_dashboard()`` every PGCAPACITY_DASHBOARD_REFRESH_MS;
  the call is a cheap no-op unless changes were published, which bounds the dashboard's
  staleness to about one interval plus the refresh time (three times the refresh time
  when one takes 100 ms or more: the function then spaces refreshes out itself).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

import psycopg

from pgcapacity.cache import ResultCache
from pgcapacity.cluster import SHARD_OPTIONS, shard_urls_of
from pgcapacity.db import listen_connection

log = logging.getLogger("pgcapacity.api")
CHANNEL = "pgcapacity_changes"


def apply_notification(cache: ResultCache, payload: str) -> None:
    if payload == "#dashboard":
        cache.invalidate_dashboard()
    elif payload == "*":
        cache.clear()
    elif payload:
        cache.invalidate(payload.split(","))


class Listener:
    """Listens on the database, or on every shard when the database is the proxy of a
    sharded cluster (docs/sharding.md): shards send the notifications, PL/Proxy cannot
    relay them. `connected` is set while every session is up."""

    def __init__(self, url: str, cache: ResultCache, on_change: Callable[[], None] = lambda: None):
        self.url = url
        self.cache = cache
        self.on_change = on_change  # after each notification (wakes the event streams)
        self.connected = asyncio.Event()
        self.notifications = 0
        self.connects = 0
        self.sessions = 1  # how many servers are listened to
        self._up: set[str] = set()

    @property
    def reconnects(self) -> int:
        """Sessions re-established after a loss."""
        return max(self.connects - self.sessions, 0)

    async def run(self) -> None:
        urls = await self._servers()
        self.sessions = len(urls)
        await asyncio.gather(*(self._listen(url) for url in urls))

    async def _servers(self) -> list[str]:
        delay = 0.1
        while True:
            try:
                conn = await listen_connection(self.url)
                async with conn:
                    cur = await conn.execute(SHARD_OPTIONS)
                    return shard_urls_of(await cur.fetchone(), self.url) or [self.url]
            except psycopg.Error as err:
                log.warning("change listener cannot reach the database (%s); retrying", err)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)

    async def _listen(self, url: str) -> None:
        delay = 0.1
        while True:
            try:
                conn = await listen_connection(url)
                async with conn:
                    await conn.execute(f"LISTEN {CHANNEL}")
                    self.cache.clear()  # whatever happened while we were not listening
                    self.connects += 1
                    self._up.add(url)
                    if len(self._up) == self.sessions:
                        self.connected.set()
                    delay = 0.1
                    async for note in conn.notifies():
                        self.notifications += 1
                        apply_notification(self.cache, note.payload)
                        self.on_change()
            except psycopg.Error as err:
                log.warning("change listener lost its connection (%s); retrying", err)
            self._up.discard(url)
            self.connected.clear()
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)


class Periodic:
    """Calls `call()` every `interval_ms`, surviving transient failures."""

    def __init__(self, name: str, call, interval_ms: int):
        self.name = name
        self.call = call
        self.interval = interval_ms / 1000
        self.last_result: dict | None = None
        self.last_success: float | None = None  # Unix time of the last call that succeeded
        self.failures = 0

    async def run(self) -> None:
        while True:
            try:
                self.last_result = await self.call()
                self.last_success = time.time()
            except Exception as err:  # keep going after a transient failure
                self.failures += 1
                log.warning("%s failed: %s", self.name, err)
            await asyncio.sleep(self.interval)


@contextlib.asynccontextmanager
async def running(*coroutines):
    """Runs the coroutines as tasks for the duration of the block, then cancels them."""
    tasks = [asyncio.create_task(c) for c in coroutines]
    try:
        yield tasks
    finally:
        pending = set(tasks)
        while pending:
            # Cancel again until every task has ended: a cancellation that lands just as
            # psycopg-pool hands the task a connection can be lost (psycopg#1345), and
            # the task would then run on for ever, hanging the shutdown.
            for task in pending:
                task.cancel()
            _, pending = await asyncio.wait(pending, timeout=1)
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                task.result()
