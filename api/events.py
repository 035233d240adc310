"""The event stream behind GET /v1/events: the audit log's claims, releases, expiries,
revokes and reconciliations as server-sent events, in the order capacity.events_after()
delivers them (docs/architecture.md, "Event stream").

Each stream reads the log itself, after the last event it sent; it reads when the change
feed reports a write (the listener wakes every stream of this instance) and at least every
POLL_SECONDS, since an event becomes deliverable when older transactions end, which
nothing announces. A stream ends after STREAM_SECONDS (or on a database failure): the
client reconnects with Last-Event-ID, as SSE clients do, and misses nothing; a shutting
down server waits at most that long for its streams.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator

import psycopg
from litestar.response import ServerSentEvent, ServerSentEventMessage
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from pgcapacity.db import fetch_all, fetch_one

log = logging.getLogger("pgcapacity.api")

BATCH = 500  # events per read
POLL_SECONDS = 1.0
KEEPALIVE_SECONDS = 15.0  # a comment line, so that proxies keep an idle stream open
STREAM_SECONDS = 300.0
RETRY_MS = 1000  # how soon an SSE client reconnects after a stream ends
EVENTS = (
    "SELECT event_id, occurred_at, kind, code, pool, holder, claim_id, units, usage_after"
    " FROM capacity.events_after(%s, %s)"
)


class Wakeup:
    """Wakes every stream waiting on it (the listener calls `notify` on each change)."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def notify(self) -> None:
        self._event.set()
        self._event = asyncio.Event()

    async def wait(self, timeout: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._event.wait(), timeout)


async def read_after(pool: AsyncConnectionPool, after: int | None) -> list[dict]:
    """The next batch after event `after` (None: from the oldest kept)."""
    return await fetch_all(pool, EVENTS, (after, BATCH))


async def start_position(pool: AsyncConnectionPool) -> int | None:
    """Where a stream without Last-Event-ID starts: after the last deliverable event."""
    row = await fetch_one(pool, "SELECT capacity.last_event_id() AS event_id")
    return row["event_id"]


def _message(row: dict) -> ServerSentEventMessage:
    data = dict(row, occurred_at=row["occurred_at"].isoformat())
    return ServerSentEventMessage(
        data=json.dumps(data, separators=(",", ":")), event=row["kind"], id=row["event_id"]
    )


async def _messages(
    pool: AsyncConnectionPool,
    wakeup: Wakeup,
    first: list[dict],
    after: int | None,
    code: str | None,
    pool_name: str | None,
) -> AsyncIterator[ServerSentEventMessage]:
    deadline = time.monotonic() + STREAM_SECONDS
    last_sent = time.monotonic()
    rows = first
    yield ServerSentEventMessage(data=None, comment="pgcapacity events", retry=RETRY_MS)
    while True:
        for row in rows:
            after = row["event_id"]
            if (code is None or row["code"] == code) and (
                pool_name is None or row["pool"] == pool_name
            ):
                last_sent = time.monotonic()
                yield _message(row)
        if time.monotonic() >= deadline:
            return
        if len(rows) < BATCH:  # caught up: wait for a write, or the next poll
            if time.monotonic() - last_sent >= KEEPALIVE_SECONDS:
                last_sent = time.monotonic()
                yield ServerSentEventMessage(data=None, comment="keep-alive")
            await wakeup.wait(min(POLL_SECONDS, max(deadline - time.monotonic(), 0)))
        try:
            rows = await read_after(pool, after)
        except (psycopg.Error, PoolTimeout) as err:  # the client resumes from `after`
            log.warning("event stream ended: %s", err)
            return


async def stream(
    pool: AsyncConnectionPool,
    wakeup: Wakeup,
    after: int | None,
    code: str | None = None,
    pool_name: str | None = None,
) -> ServerSentEvent:
    """The response for a stream resuming after event `after` (None: from now on). The
    first read happens here, so that a bad Last-Event-ID is an error response."""
    if after is None:
        after = await start_position(pool)
    first = await read_after(pool, after)
    return ServerSentEvent(
        _messages(pool, wakeup, first, after, code, pool_name),
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
