"""How much of the HTTP claim's cost is pgcapacity's API, and how much the stack it is built on.

Serves the bench's claim+release with the thinnest app the stack allows (Litestar, uvicorn
and a psycopg pool, one SQL call per request: no middleware, auth, metrics, cache, schemas
or background tasks) and drives it with make bench's own wrk script (`http-claim`), then
the real API (`pgcapacity serve`) the same way, interleaved, on one scratch database:

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres .venv/bin/python bench/http_floor.py

Without DATABASE_URL it uses a private durable server, as make bench does. Compare both
with make bench's `spread` row (direct SQL) of a run close in time.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import httpx
import psycopg
from litestar import Litestar, delete, post
from litestar.params import Parameter
from psycopg_pool import AsyncConnectionPool

CLIENTS = 32
SECONDS = 5
ROUNDS = 2
pool: AsyncConnectionPool | None = None


@post("/v1/codes/{code:str}/claims", status_code=201)
async def claim(code: str, data: dict) -> dict:
    async with pool.connection() as conn:
        cur = await conn.execute(
            "SELECT claim_id, token FROM capacity.claim(%s, %s)", (code, data["holder"])
        )
        claim_id, token = await cur.fetchone()
    return {"claim_id": claim_id, "token": str(token)}


@delete("/v1/claims/{claim_id:int}", status_code=200)
async def release(claim_id: int, token: str = Parameter(header="X-Claim-Token")) -> dict:
    async with pool.connection() as conn:
        cur = await conn.execute(
            "SELECT released FROM capacity.release(%s::bigint, %s::uuid)", (claim_id, token)
        )
        (released,) = await cur.fetchone()
    return {"released": released}


async def _open_pool() -> None:
    global pool
    pool = AsyncConnectionPool(
        os.environ["DATABASE_URL"],
        min_size=16,
        max_size=16,
        kwargs={"autocommit": True},
        open=False,
    )
    await pool.open(wait=True)


app = Litestar([claim, release], on_startup=[_open_pool])


def _bare_server(db: str):
    from api import pgserver

    port = pgserver.free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "http_floor:app",
            "--app-dir",
            os.path.dirname(__file__),
            "--port",
            str(port),
            "--log-level",
            "warning",
            "--no-access-log",
        ],
        env=os.environ | {"DATABASE_URL": db},
    )
    base = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            httpx.get(f"{base}/v1/claims/0", timeout=1)  # any answer: it is up
            return proc, base
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("the bare app did not start")


def main() -> None:
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from api.bench import http, workloads
    from api.bench.main import scratch_database

    with scratch_database(os.environ.get("DATABASE_URL")) as (db, _):
        with psycopg.connect(db, autocommit=True) as conn:
            workloads.install(conn)
        print(f"http-claim (claim+release pairs/s), {CLIENTS} clients, {SECONDS} s per run")
        for _ in range(ROUNDS):
            for label in ("bare", "pgcapacity"):
                with psycopg.connect(db, autocommit=True) as conn:
                    workloads.reset(conn, CLIENTS)
                if label == "bare":
                    proc, base = _bare_server(db)
                    try:
                        row = http.run_wrk(base, "http-claim", CLIENTS, SECONDS)
                    finally:
                        proc.terminate()
                        proc.wait()
                else:
                    with http.api_server(db, cache_ttl_ms=0, pool_max=16) as base:
                        row = http.run_wrk(base, "http-claim", CLIENTS, SECONDS)
                print(f"{label:<11} {row.ops_per_s:8.0f}  p99 {row.p99_ms} ms  errors {row.errors}")


if __name__ == "__main__":
    main()
