"""Helpers for HTTP tests: the real app, in process or behind a real uvicorn socket."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator

import httpx
import uvicorn
from litestar.testing import AsyncTestClient

from api import pgserver
from api.app import create_app
from api.settings import Settings

ADMIN = "admin-secret"
CLIENT = "client-secret"
ADMIN_AUTH = {"Authorization": f"Bearer {ADMIN}"}
CLIENT_AUTH = {"Authorization": f"Bearer {CLIENT}"}


def settings_for(conninfo: str, **overrides) -> Settings:
    values = {"admin_token": ADMIN, "client_tokens": (CLIENT,), "pool_max": 4}
    values.update(overrides)
    return Settings(database_url=conninfo, **values)


@contextlib.asynccontextmanager
async def api_client(settings: Settings) -> AsyncIterator[AsyncTestClient]:
    """The real app (lifespan, pool, listener, refresher) driven in process."""
    async with AsyncTestClient(app=create_app(settings)) as client:
        yield client


@contextlib.contextmanager
def live_server(settings: Settings) -> Iterator[str]:
    """The real app served by uvicorn on a free port in a background thread; yields its URL."""
    port = pgserver.free_port()
    # A long keep-alive: uvicorn closing an idle pooled connection just as the client
    # reuses it shows up as httpx.ReadError on a loaded 2-core machine.
    config = uvicorn.Config(
        create_app(settings),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        lifespan="on",
        timeout_keep_alive=300,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=lambda: asyncio.run(server.serve()), daemon=True)
    thread.start()
    try:
        for _ in range(600):
            if server.started or not thread.is_alive():
                break
            threading.Event().wait(0.05)
        if not server.started:
            raise RuntimeError("uvicorn did not start (see the log above)")
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(30)


async def http_workers(base: str, jobs: int, clients: int, job) -> Counter:
    """`clients` concurrent HTTP clients share jobs 0..jobs-1; `job(http, i, tally)` does one
    and counts its outcomes in `tally`, which is returned."""
    pending = iter(range(jobs))  # one shared iterator: asyncio runs one worker at a time
    tally: Counter = Counter()
    limits = httpx.Limits(max_connections=clients)
    async with httpx.AsyncClient(
        base_url=base, headers=CLIENT_AUTH, limits=limits, timeout=60
    ) as http:

        async def worker() -> None:
            for i in pending:
                await job(http, i, tally)

        await asyncio.gather(*(worker() for _ in range(clients)))
    return tally


def assert_error(response, name: str, status: int) -> dict:
    """The error shape of SPEC §5 with the expected name and status."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}, body
    error = body["error"]
    assert error["code"] == name, body
    assert error["sqlstate"].startswith("CP") and error["message"], body
    assert isinstance(error["details"], dict), body
    return error


def wait_for(condition, timeout: float = 15.0) -> bool:
    """Polls a condition (no fixed sleeps): True as soon as it holds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return False
