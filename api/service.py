"""What the endpoints do: each operation is one SQL function call, plus the read cache.

No capacity logic lives here; the database decides. Reads go through the cache, writes
invalidate the codes they touched at once (other instances hear it through NOTIFY).
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

import msgspec
from psycopg.rows import args_row
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from pgcapacity import schemas
from pgcapacity.background import CHANNEL
from pgcapacity.cache import DASHBOARD_KEY, ResultCache
from pgcapacity.db import fetch_all, fetch_one, named_call
from pgcapacity.replicas import READ_FAILURES, ReadRouting

_FAILED = object()  # what waiters get from a load that raised or was cancelled


def _columns(struct) -> str:
    """A SELECT list of a result's columns in `struct`'s field order, so that each row
    becomes the struct from its values (psycopg's args_row): no dict per row (a dict and
    Struct(**row) cost 1 us a row)."""
    return ", ".join(struct.__struct_fields__)


STATUS_COLUMNS = _columns(schemas.CodeStatus)
CLAIM_INFO_COLUMNS = _columns(schemas.ClaimInfo)
CLAIM_COLUMNS = _columns(schemas.Claim)
RELEASE = f"SELECT {_columns(schemas.Release)} FROM capacity.release"
AS_STATUS, AS_CLAIM, AS_RELEASE, AS_CLAIM_INFO = (
    args_row(struct)
    for struct in (schemas.CodeStatus, schemas.Claim, schemas.Release, schemas.ClaimInfo)
)


class Capacity:
    def __init__(
        self,
        pool: AsyncConnectionPool,
        cache: ResultCache,
        lock_mode: str | None,
        reads: ReadRouting | None = None,
    ):
        self.pool = pool
        self.cache = cache
        self.lock_mode = lock_mode
        self.reads = reads or ReadRouting(pool, [], 0)
        self._loading: dict = {}  # key -> (ticket, future of the value) of loads under way

    async def _read(self, fetch, query: str, params: tuple, row_factory=None):
        """A read that may be served by a replica (ReadRouting); one that fails there for
        a reason of the server is served by the primary."""
        pool = self.reads.pool()
        if pool is self.pool:
            return await fetch(self.pool, query, params, row_factory)
        try:
            return await fetch(pool, query, params, row_factory)
        except READ_FAILURES as err:
            self.reads.failed(pool, err)
            return await fetch(self.pool, query, params, row_factory)

    async def claim(
        self,
        code: str,
        holder: str,
        lock_mode: str | None,
        units: int = 1,
        lease: str | None = None,
        wait_ms: int = 0,
    ) -> schemas.Claim:
        """capacity.claim(), or with wait_ms capacity.claim_wait(), which queues for room."""
        query, params = named_call(
            "claim_wait" if wait_ms else "claim",
            columns=CLAIM_COLUMNS,
            code=code,
            holder=holder,
            wait=timedelta(milliseconds=wait_ms) if wait_ms else None,
            lock_mode=lock_mode or self.lock_mode,
            units=None if units == 1 else units,  # the SQL default; one statement less to prepare
            lease=lease,
        )
        claim = await fetch_one(self.pool, query, params, AS_CLAIM)
        if not claim.already_held:
            self.cache.invalidate([claim.code])
        return claim

    async def release(self, claim_id: int, token) -> schemas.Release:
        release = await fetch_one(
            self.pool,
            f"{RELEASE}(%s::bigint, %s::uuid)",
            (claim_id, token),
            AS_RELEASE,
        )
        if release.released:
            self.cache.invalidate([release.code])
        return release

    async def release_holder(self, code: str, holder: str) -> schemas.Release:
        """The holder's active claim on `code` released without its id or token (admin)."""
        release = await fetch_one(
            self.pool, f"{RELEASE}(%s::text, %s::text)", (code, holder), AS_RELEASE
        )
        if release.released:
            self.cache.invalidate([release.code])
        return release

    async def list_codes(
        self, search: str | None, pool: str | None, after: str | None, limit: int
    ) -> schemas.CodePage:
        """Not cached: a listing is for people and tools, not for the claim path."""
        query, params = named_call(
            "list_codes",
            columns=STATUS_COLUMNS,
            search=search,
            pool=pool,
            after=after,
            page_size=limit,
        )
        rows = await fetch_all(self.pool, query, params, row_factory=AS_STATUS)
        return schemas.CodePage(rows, rows[-1].code if len(rows) == limit else None)

    async def list_claims(
        self, code: str | None, holder: str | None, after: int, limit: int
    ) -> schemas.ClaimPage:
        query, params = named_call(
            "list_claims",
            columns=CLAIM_INFO_COLUMNS,
            code=code,
            holder=holder,
            after=after,
            page_size=limit,
        )
        rows = await fetch_all(self.pool, query, params, row_factory=AS_CLAIM_INFO)
        return schemas.ClaimPage(rows, rows[-1].claim_id if len(rows) == limit else None)

    async def get_claim(self, claim_id: int) -> schemas.ClaimInfo:
        return await fetch_one(
            self.pool,
            f"SELECT {CLAIM_INFO_COLUMNS} FROM capacity.get_claim(%s::bigint)",
            (claim_id,),
            AS_CLAIM_INFO,
        )

    async def heartbeat(self, claim_id: int, token) -> schemas.Heartbeat:
        row = await fetch_one(
            self.pool,
            "SELECT capacity.heartbeat(%s::bigint, %s::uuid) AS last_seen_at",
            (claim_id, token),
        )
        return schemas.Heartbeat(claim_id, row["last_seen_at"])

    async def _cached(self, key, load, codes_of):
        """The cached value of `key`, else `load()`; stored unless a write to one of
        `codes_of(value)` landed while loading (see ResultCache.put).

        Misses of one key while it is being loaded wait for that load instead of each
        going to the database: when a popular code's entry expires under hundreds of
        readers they would otherwise all query it at once, and queue for the pool (seen:
        stalls of up to a second with two workers on 2 cores). A waiter takes the value
        only if no write to its codes was heard here since the load began (a client
        reads its own writes), else it loads for itself. Only with the cache on: with it
        off, every read is the database's answer after the request arrived."""
        if (hit := self.cache.get(key)) is not None:
            return hit
        if (loading := self._loading.get(key)) is not None:
            ticket, done = loading
            value = await asyncio.shield(done)
            if value is not _FAILED and self.cache.still_fresh(codes_of(value), ticket):
                return value
        return await self._load(key, load, codes_of)

    async def _load(self, key, load, codes_of):
        ticket = self.cache.ticket()
        loading = (ticket, asyncio.get_running_loop().create_future())
        if self.cache.enabled:
            self._loading.setdefault(key, loading)
        value = _FAILED  # the waiters load for themselves (the error is this caller's)
        try:
            value = await load()
        finally:
            if self._loading.get(key) is loading:
                del self._loading[key]
            loading[1].set_result(value)
        self.cache.put(key, value, codes_of(value), ticket)
        return value

    async def check(self, code: str) -> schemas.CodeStatus:
        async def load():
            return await self._read(
                fetch_one, f"SELECT {STATUS_COLUMNS} FROM capacity.check(%s)", (code,), AS_STATUS
            )

        return await self._cached(("status", code), load, lambda status: [status.code])

    async def usage(self, codes: list[str]) -> schemas.Usage:
        async def load():
            statuses = await self._read(
                fetch_all,
                f"SELECT {STATUS_COLUMNS} FROM capacity.usage_batch(%s)",
                (codes,),
                AS_STATUS,
            )
            return schemas.Usage(statuses)

        return await self._cached(
            ("usage", tuple(codes)), load, lambda usage: {s.code for s in usage.codes}
        )

    async def dashboard(self) -> schemas.Dashboard:
        async def load():
            rows = await self._read(fetch_all, "SELECT * FROM capacity.dashboard ORDER BY pool", ())
            pools = [
                schemas.PoolSummary(**{k: v for k, v in r.items() if k != "refreshed_at"})
                for r in rows
            ]
            return schemas.Dashboard(rows[0]["refreshed_at"] if rows else None, pools)

        return await self._cached(DASHBOARD_KEY, load, lambda _: [])

    async def refresh_dashboard(self, force: bool = False) -> dict:
        row = await fetch_one(self.pool, "SELECT * FROM capacity.refresh_dashboard(%s)", (force,))
        if row["refreshed"]:
            self.cache.invalidate_dashboard()
        return row

    async def tune_slots(self, min_claims: int | None, slots: int | None) -> list[dict]:
        query, params = named_call("tune_slots", min_claims=min_claims, slots=slots)
        return await fetch_all(self.pool, query, params)

    async def publish_changes(self) -> dict:
        return await fetch_one(self.pool, "SELECT * FROM capacity.publish_changes()")

    async def clear_cache(self) -> None:
        """Empties this cache now and every instance's through the change channel (the
        listeners drop everything on '*', this one included)."""
        self.cache.clear()
        await fetch_one(self.pool, "SELECT pg_notify(%s, '*') AS sent", (CHANNEL,))

    async def upsert_codes(self, specs: list[schemas.CodeSpec]) -> schemas.UpsertResult:
        document = msgspec.json.decode(msgspec.json.encode(specs))
        row = await fetch_one(
            self.pool, "SELECT * FROM capacity.upsert_codes(%s)", (Jsonb(document),)
        )
        self.cache.clear()  # admin writes are rare: drop everything rather than guess names
        return schemas.UpsertResult(**row)

    async def revoke(self, code: str) -> schemas.RevokeResult:
        row = await fetch_one(self.pool, "SELECT * FROM capacity.revoke_code(%s)", (code,))
        self.cache.clear()
        return schemas.RevokeResult(row["claims_ended"], row["revoked"])

    async def set_holder_limit(self, pool: str, holder: str, max_claims: int | None) -> None:
        await fetch_one(
            self.pool,
            "SELECT capacity.set_holder_limit(%s, %s, %s) AS done",
            (pool, holder, max_claims),
        )

    async def set_pool_limit(self, pool: str, max_units: int | None) -> None:
        await fetch_one(
            self.pool, "SELECT capacity.set_pool_limit(%s, %s) AS done", (pool, max_units)
        )

    async def expire_all_idle(self, idle_seconds: int | None) -> dict:
        """Batches of expire_idle_claims() until none is pending (the API's own expiry).
        Another instance running it at the same time gets zeros and stops: one runner."""
        expired = 0
        while True:
            batch = await self.expire_idle(idle_seconds, None)
            expired += batch.expired
            if not batch.more_pending:
                return {"expired": expired}

    async def expire_idle(
        self, idle_seconds: int | None, batch_size: int | None
    ) -> schemas.ExpiryResult:
        idle = None if idle_seconds is None else timedelta(seconds=idle_seconds)
        query, params = named_call("expire_idle_claims", idle=idle, batch_size=batch_size)
        row = await fetch_one(self.pool, query, params)
        if row["expired"]:
            self.cache.clear()
        return schemas.ExpiryResult(**row)
