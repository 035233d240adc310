"""The psycopg connection pool and the one way handlers call SQL.

Connections are autocommit: every call is one `SELECT capacity.fn(...)`, atomic by itself,
one round trip. Behind PgBouncer in transaction mode (PGCAPACITY_PGBOUNCER=1) nothing
session-scoped may be used: no server-side prepared statements and no startup options
(set statement_timeout on the role instead, see the README).
"""

from __future__ import annotations

import asyncio
import time
import weakref
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from pgcapacity.settings import Settings


def connection_kwargs(settings: Settings) -> dict[str, Any]:
    kwargs: dict[str, Any] = {"autocommit": True, "row_factory": dict_row}
    if settings.pgbouncer:
        kwargs["prepare_threshold"] = None
    else:
        kwargs["options"] = (
            f"-c statement_timeout={settings.statement_timeout_ms}"
            f" -c lock_timeout={settings.lock_timeout_ms}"
            # A claim waiting in a queue (claim_wait) leaves it if the API's connection dies.
            " -c client_connection_check_interval=1000"
            " -c application_name=pgcapacity-api"
        )
    return kwargs


class Pool(AsyncConnectionPool):
    """psycopg's pool, checking a connection (a round trip: psycopg's check_connection)
    before handing it out only when it sat idle longer than `check_idle_ms`: a check per
    request would double the round trips of every read, and a connection used moments ago
    was alive moments ago. One connection found broken usually means all of them are (a
    restarted server, a network cut), so the pool then tests its idle connections at once,
    in the background, and replaces the broken ones (psycopg's pool.check()). After such
    an outage, the request that found the broken connection fails with 503
    SERVICE_UNAVAILABLE; the next ones get working connections."""

    def __init__(self, *args: Any, check_idle_ms: int, **kwargs: Any) -> None:
        self._idle_s = check_idle_ms / 1000
        self._returned: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
        self._sweep: asyncio.Task | None = None
        super().__init__(*args, check=self._check_if_idle, **kwargs)

    async def putconn(self, conn: psycopg.AsyncConnection) -> None:
        if conn.closed:
            self._sweep_soon()
        else:
            self._returned[conn] = time.monotonic()
        await super().putconn(conn)

    async def close(self, timeout: float = 5.0) -> None:
        if self._sweep is not None:
            self._sweep.cancel()
        await super().close(timeout)

    async def _check_if_idle(self, conn: psycopg.AsyncConnection) -> None:
        returned = self._returned.get(conn)
        if returned is not None and time.monotonic() - returned < self._idle_s:
            return
        try:
            await AsyncConnectionPool.check_connection(conn)
        except Exception:
            self._sweep_soon()
            raise

    def _sweep_soon(self) -> None:
        if self._sweep is None or self._sweep.done():
            self._sweep = asyncio.get_running_loop().create_task(self.check())


def make_pool(settings: Settings, url: str | None = None, name: str = "pgcapacity") -> Pool:
    """The pool of DATABASE_URL, or of another server (a read replica: at least one
    connection, as many as the primary's at most). Created closed; the app's lifespan
    opens and closes it."""
    return Pool(
        url or settings.database_url,
        min_size=settings.pool_min if url is None else min(settings.pool_min, 1),
        max_size=settings.pool_max,
        timeout=settings.pool_timeout_ms / 1000,
        kwargs=connection_kwargs(settings),
        check_idle_ms=settings.pool_check_idle_ms,
        open=False,
        name=name,
    )


def named_call(function: str, *, columns: str = "*", **arguments: Any) -> tuple[str, tuple]:
    """`SELECT <columns> FROM capacity.<function>(name => %s, ...)` with the arguments that
    are not None: the ones left out take the SQL function's own defaults, which Python does
    not restate."""
    given = {name: value for name, value in arguments.items() if value is not None}
    names = ", ".join(f"{name} => %s" for name in given)
    return f"SELECT {columns} FROM capacity.{function}({names})", tuple(given.values())


def _cursor(conn: psycopg.AsyncConnection, row_factory: Any) -> psycopg.AsyncCursor:
    """A cursor with `row_factory`, or the connection's own (dict rows)."""
    return conn.cursor(row_factory=row_factory) if row_factory else conn.cursor()


async def fetch_one(
    pool: AsyncConnectionPool, query: str, params: tuple = (), row_factory: Any = None
) -> Any:
    """The first row, as a dict unless another psycopg row factory is given."""
    async with pool.connection() as conn:
        cur = _cursor(conn, row_factory)
        await cur.execute(query, params)
        return await cur.fetchone()


async def fetch_all(
    pool: AsyncConnectionPool, query: str, params: tuple = (), row_factory: Any = None
) -> list[Any]:
    """Every row, as dicts unless another psycopg row factory is given."""
    async with pool.connection() as conn:
        cur = _cursor(conn, row_factory)
        await cur.execute(query, params)
        return await cur.fetchall()


async def listen_connection(url: str) -> psycopg.AsyncConnection:
    """A dedicated session for LISTEN, named so operators can find it in pg_stat_activity."""
    return await psycopg.AsyncConnection.connect(
        url, autocommit=True, application_name="pgcapacity-listener"
    )


def describe(conninfo: str) -> str:
    """host:port/dbname of a connection string, without its password or options."""
    parts = conninfo_to_dict(conninfo)
    host = parts.get("host") or parts.get("hostaddr") or "localhost"
    port = parts.get("port") or "5432"
    return f"{host}:{port}/{parts.get('dbname', '')}"
