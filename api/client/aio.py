"""The client for applications calling pgcapacity's SQL with psycopg (asyncio)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Generator
from datetime import datetime
from typing import Any
from uuid import UUID

import psycopg
from psycopg.rows import class_row
from psycopg_pool import AsyncConnectionPool

from pgcapacity.client import _calls
from pgcapacity.client._calls import DEFAULT_RETRY, Claim, CodeStatus, Release, Retry
from pgcapacity.client.errors import LockContended, translate

log = logging.getLogger("pgcapacity.client")


class AsyncCapacity:
    """pgcapacity over a psycopg AsyncConnectionPool or one AsyncConnection:

        cap = AsyncCapacity(pool)
        claim = await cap.claim("CLASS-7A", "student-42")
        async with cap.claim("CLASS-7A", "student-42") as claim:
            ...  # heartbeats in a task while the block runs; released when it ends

    Errors and retries as the sync Capacity."""

    def __init__(
        self,
        source: AsyncConnectionPool | psycopg.AsyncConnection,
        *,
        lock_mode: str | None = None,
        retry: Retry = DEFAULT_RETRY,
        heartbeat_every: float | None = 60.0,
        on_retry: Callable[[int, LockContended], None] | None = None,
    ):
        self.source = source
        self.lock_mode = lock_mode
        self.retry = retry
        self.heartbeat_every = heartbeat_every
        self.on_retry = on_retry

    @contextlib.asynccontextmanager
    async def _connection(self) -> AsyncIterator[psycopg.AsyncConnection]:
        try:
            if isinstance(self.source, AsyncConnectionPool):
                async with self.source.connection() as conn:
                    yield conn
            else:
                yield self.source
        except psycopg.Error as err:
            raise translate(err) from err

    async def _one(self, query: str, params: tuple, cls=None):
        async with self._connection() as conn:
            cur = conn.cursor(row_factory=class_row(cls)) if cls else conn.cursor()
            await cur.execute(query, params)
            return await cur.fetchone()

    def claim(
        self,
        code: str,
        holder: str,
        *,
        lock_mode: str | None = None,
        units: int = 1,
        lease: _calls.Lease = None,
    ) -> _ClaimCall:
        """Awaited: `units` units of `code` for `holder`; used with `async with`: held."""
        return _ClaimCall(self, code, holder, lock_mode, units, lease)

    async def _claim(
        self, code: str, holder: str, lock_mode: str | None, units: int, lease: _calls.Lease
    ) -> Claim:
        query, params = _calls.claim_query(code, holder, lock_mode or self.lock_mode, units, lease)
        for attempt in range(1, self.retry.attempts + 1):
            try:
                return await self._one(query, params, Claim)
            except LockContended as err:
                if attempt == self.retry.attempts:
                    raise
                if self.on_retry:
                    self.on_retry(attempt, err)
                await asyncio.sleep(self.retry.delay(attempt - 1))
        raise AssertionError("unreachable")

    async def release(self, claim: Claim | int, token: UUID | None = None) -> Release:
        return await self._one(_calls.RELEASE, _calls.claim_key(claim, token), Release)

    async def release_holder(self, code: str, holder: str) -> Release:
        return await self._one(_calls.RELEASE_HOLDER, (code, holder), Release)

    async def heartbeat(self, claim: Claim | int, token: UUID | None = None) -> datetime:
        return (await self._one(_calls.HEARTBEAT, _calls.claim_key(claim, token)))[0]

    async def assert_held(self, claim: Claim | int, token: UUID | None = None) -> int:
        """As Capacity.assert_held (with an AsyncConnection, in the caller's transaction)."""
        return (await self._one(_calls.ASSERT_HELD, _calls.claim_key(claim, token)))[0]

    async def check(self, code: str) -> CodeStatus:
        return await self._one(_calls.CHECK, (code,), CodeStatus)

    async def usage(self, codes: list[str]) -> list[CodeStatus]:
        async with self._connection() as conn:
            cur = conn.cursor(row_factory=class_row(CodeStatus))
            await cur.execute(_calls.USAGE, (codes,))
            return await cur.fetchall()


class _ClaimCall:
    """What AsyncCapacity.claim() returns: awaitable (the claim) and an async context
    manager (the claim held: heartbeats in a task, released at the end)."""

    def __init__(
        self,
        client: AsyncCapacity,
        code: str,
        holder: str,
        lock_mode: str | None,
        units: int,
        lease: _calls.Lease,
    ):
        self.client = client
        self.args = (code, holder, lock_mode, units, lease)
        self.claim: Claim | None = None
        self.task: asyncio.Task | None = None

    def __await__(self) -> Generator[Any, None, Claim]:
        return self.client._claim(*self.args).__await__()

    async def __aenter__(self) -> Claim:
        self.claim = await self.client._claim(*self.args)
        if every := self.client.heartbeat_every:
            self.task = asyncio.create_task(self._beat(self.claim, every))
        return self.claim

    async def _beat(self, claim: Claim, every: float) -> None:
        while True:
            await asyncio.sleep(every)
            try:
                await self.client.heartbeat(claim)
            except Exception as err:  # the claim ended, or the database is away for now
                log.warning("heartbeat of claim %s failed: %s", claim.claim_id, err)
                if getattr(err, "name", None) == "CLAIM_NOT_FOUND":
                    return

    async def __aexit__(self, *exc) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
        await self.client.release(self.claim)
