"""The psycopg connection pool and the one way handlers call SQL.

Connections are autocommit: every call is one `SELECT capacity.fn(...)`, atomic by itself,
one round trip. Behind PgBouncer in transaction mode (PGCAPACITY_PGBOUNCER=1) nothing
session-scoped may be used: no server-side prepared statements and no startup options
(set statement_timeout on the role instead, see the README).
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from api.settings import Settings


def connection_kwargs(settings: Settings) -> dict[str, Any]:
    kwargs: dict[str, Any] = {"autocommit": True, "row_factory": dict_row}
    if settings.pgbouncer:
        kwargs["prepare_threshold"] = None
    else:
        kwargs["options"] = (
            f"-c statement_timeout={settings.statement_timeout_ms}"
            f" -c lock_timeout={settings.lock_timeout_ms}"
            " -c application_name=pgcapacity-api"
        )
    return kwargs


def make_pool(settings: Settings) -> AsyncConnectionPool:
    """Created closed; the app's lifespan opens and closes it."""
    return AsyncConnectionPool(
        settings.database_url,
        min_size=settings.pool_min,
        max_size=settings.pool_max,
        timeout=settings.pool_timeout_ms / 1000,
        kwargs=connection_kwargs(settings),
        check=AsyncConnectionPool.check_connection,
        open=False,
        name="pgcapacity",
    )


async def fetch_one(pool: AsyncConnectionPool, query: str, params: tuple = ()) -> dict:
    async with pool.connection() as conn:
        cur = await conn.execute(query, params)
        return await cur.fetchone()


async def fetch_all(pool: AsyncConnectionPool, query: str, params: tuple = ()) -> list[dict]:
    async with pool.connection() as conn:
        cur = await conn.execute(query, params)
        return await cur.fetchall()


async def listen_connection(url: str) -> psycopg.AsyncConnection:
    """A dedicated session for LISTEN, named so operators can find it in pg_stat_activity."""
    return await psycopg.AsyncConnection.connect(
        url, autocommit=True, application_name="pgcapacity-listener"
    )
