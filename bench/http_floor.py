"""How much of the HTTP claim's cost is pgcapacity's API, and how much the stack it is built on.

Runs make bench's claim+release four ways, interleaved, on one scratch database: direct
SQL (the bench's `spread` row in advisory mode: client threads with blocking psycopg), the
same two endpoints as plain ASGI on uvicorn and a psycopg pool (`raw ASGI`: no framework),
the thinnest Litestar app (`bare`: one SQL call per request; no middleware, auth, metrics,
cache, schemas or background tasks) and the real API (`pgcapacity serve`, one process, auth
on), the three apps under make bench's own wrk script (`http-claim`). Each row also says
where the CPU went per pair (from /proc: the client or API process, all `postgres`
processes when the server is local, wrk), how the API process was scheduled (schedstat:
seconds running and waiting runnable, per second), the server's WAL flushes per pair
(fewer commits in flight, fewer per flush) and the shares of the machine's CPU time that
were idle or taken by the hypervisor (steal):

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres .venv/bin/python bench/http_floor.py

Without DATABASE_URL it uses a private durable server, as make bench does. Linux only.
`--against REV` adds the real API as of another commit (served from a temporary git
worktree; the scratch database has this checkout's SQL, so compare commits that share
it), to compare a change of the API with what it replaces; `--rows` picks rows,
`--rounds` sets the rounds (each round runs the rows in the opposite order to the last),
`--clients` the concurrency (1: the API's CPU per request without contention, the
steadiest figure on a noisy machine). Medians by row at the end:

    .venv/bin/python bench/http_floor.py --rows pgcapacity --against HEAD~1 --rounds 6 --clients 1
"""

from __future__ import annotations

import argparse
import logging
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import httpx
import msgspec
import psycopg
from litestar import Litestar, delete, post
from litestar.params import Parameter
from procstat import cpu_seconds  # a sibling module (bench/ is on the path: script, --app-dir)
from psycopg_pool import AsyncConnectionPool

from api.bench import cpustat

CLIENTS = 32
SECONDS = 5
ROUNDS = 2
ROWS = ("direct SQL", "raw ASGI", "bare", "pgcapacity")
POOL = 20  # connections of both apps, as make bench gives its HTTP rows
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
        min_size=POOL,
        max_size=POOL,
        kwargs={"autocommit": True},
        open=False,
    )
    await pool.open(wait=True)


app = Litestar([claim, release], on_startup=[_open_pool])


async def raw_app(scope, receive, send) -> None:
    """The same two endpoints as plain ASGI, no framework: what uvicorn and psycopg cost."""
    if scope["type"] == "lifespan":
        while (await receive())["type"] == "lifespan.startup":
            await _open_pool()
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    if scope["method"] not in ("POST", "DELETE"):  # the readiness probe
        await send({"type": "http.response.start", "status": 404, "headers": []})
        await send({"type": "http.response.body", "body": b""})
        return
    if scope["method"] == "POST":
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        query = "SELECT claim_id, token FROM capacity.claim(%s, %s)"
        params = (scope["path"].split("/")[3], msgspec.json.decode(body)["holder"])
        status = 201
    else:
        query = "SELECT released FROM capacity.release(%s::bigint, %s::uuid)"
        token = next((v for k, v in scope["headers"] if k == b"x-claim-token"), b"").decode()
        params = (int(scope["path"].rsplit("/", 1)[1]), token)
        status = 200
    async with pool.connection() as conn:
        cur = await conn.execute(query, params)
        row = await cur.fetchone()
    answer = msgspec.json.encode(
        {"claim_id": row[0], "token": str(row[1])} if status == 201 else {"released": row[0]}
    )
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(answer))]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": answer})


def _stack_server(db: str, target: str = "http_floor:app"):
    """`target` (one of this module's apps) under uvicorn in its own process: (proc, URL)."""
    from api import pgserver

    port = pgserver.free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            target,
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


def _postgres_seconds() -> float:
    total = 0.0
    for entry in os.listdir("/proc"):
        try:
            if entry.isdigit() and Path(f"/proc/{entry}/comm").read_text().startswith("postgres"):
                total += cpu_seconds(int(entry))
        except OSError:  # gone meanwhile
            pass
    return total


def _listening_pid(port: int) -> int:
    """The process listening on 127.0.0.1:`port` (from /proc/net/tcp and the fds)."""
    inodes = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        cols = line.split()
        if cols[3] == "0A" and int(cols[1].rsplit(":", 1)[1], 16) == port:
            inodes.add(f"socket:[{cols[9]}]")
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                for fd in os.listdir(f"/proc/{entry}/fd"):
                    if os.readlink(f"/proc/{entry}/fd/{fd}") in inodes:
                        return int(entry)
            except OSError:
                pass
    raise RuntimeError(f"nothing listens on port {port}")


def _wal_syncs(db: str) -> int:
    """The server's WAL flushes so far (pg_stat_wal.wal_sync)."""
    with psycopg.connect(db, autocommit=True) as conn:
        return conn.execute("SELECT wal_sync FROM pg_stat_wal").fetchone()[0]


@contextmanager
def _accounted(pid: int | None, db: str):
    """Yields a dict filled on exit with CPU seconds (`own`: process `pid`, or this one;
    `postgres`; `wrk`: waited-for children), `pid`'s schedstat seconds, the server's WAL
    flushes, and the shares of the machine's CPU time that were idle or stolen by the
    hypervisor."""
    pid = pid or os.getpid()
    syncs, machine = _wal_syncs(db), cpustat.sample()
    sched = lambda: [int(v) / 1e9 for v in Path(f"/proc/{pid}/schedstat").read_text().split()[:2]]  # noqa: E731
    kids = lambda: (r := resource.getrusage(resource.RUSAGE_CHILDREN)).ru_utime + r.ru_stime  # noqa: E731
    before = (cpu_seconds(pid), _postgres_seconds(), kids(), sched(), time.monotonic())
    out: dict = {}
    yield out
    after = (cpu_seconds(pid), _postgres_seconds(), kids(), sched(), time.monotonic())
    now = cpustat.sample()
    out["steal"], out["idle"] = cpustat.steal_share(machine, now), cpustat.idle_share(machine, now)
    out["syncs"] = _wal_syncs(db) - syncs
    out["wall"] = after[4] - before[4]
    for i, key in enumerate(("own", "postgres", "wrk")):
        out[key] = after[i] - before[i]
    out["run"], out["wait"] = (a - b for a, b in zip(after[3], before[3], strict=True))


def _report(label: str, pairs_per_s: float, p99: float | None, used: dict) -> float:
    """Prints the run's line; returns the API process's (or client's) CPU us per pair."""
    pairs = pairs_per_s * used["wall"]
    per_pair = "  ".join(
        f"{key} {1e6 * used[key] / pairs:4.0f}" for key in ("own", "postgres", "wrk") if used[key]
    )
    busy = (used["own"] + used["postgres"] + used["wrk"]) / used["wall"]
    sched = (
        f", API process ran {used['run'] / used['wall']:.2f} s/s, "
        f"waited runnable {used['wait'] / used['wall']:.2f} s/s"
        if label != "direct SQL"  # (its clients are threads: no one process to follow)
        else ""
    )
    machine = "  ".join(
        f"{key} {used[key]:.0%}" for key in ("idle", "steal") if used[key] is not None
    )
    print(
        f"{label:<11} {pairs_per_s:6.0f}  p99 {p99 or 0:5.1f} ms | us/pair: {per_pair} | "
        f"cores busy {busy:.2f}{sched} | WAL flushes/pair {used['syncs'] / pairs:.2f}"
        f"{' | machine ' + machine if machine else ''}",
        flush=True,
    )
    return 1e6 * used["own"] / pairs


@contextmanager
def _checkout(rev: str | None):
    """A temporary git worktree of `rev` (None: no checkout), removed at the end."""
    if rev is None:
        yield None
        return
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    path = tempfile.mkdtemp(prefix="pgcapacity-against-")
    subprocess.run(["git", "-C", repo, "worktree", "add", "--detach", path, rev], check=True)
    try:
        yield path
    finally:
        subprocess.run(["git", "-C", repo, "worktree", "remove", "--force", path], check=False)


def _arguments() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--rows", nargs="+", choices=ROWS, default=list(ROWS))
    p.add_argument("--against", metavar="REV", help="also the API as of this git revision")
    p.add_argument("--rounds", type=int, default=ROUNDS)
    p.add_argument("--clients", type=int, default=CLIENTS)
    return p.parse_args()


def main() -> None:
    args = _arguments()
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per readiness poll
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from api.bench import http, runner, workloads
    from api.bench.main import scratch_database

    spread = workloads.WORKLOADS["spread"].make_op("advisory", 0)
    labels = list(args.rows) + ([f"pgcapacity@{args.against}"] if args.against else [])
    results: dict[str, list[tuple[float, float]]] = {label: [] for label in labels}
    with (
        _checkout(args.against) as other,
        scratch_database(os.environ.get("DATABASE_URL")) as (db, _),
    ):
        with psycopg.connect(db, autocommit=True) as conn:
            workloads.install(conn)
        print(
            f"claim+release pairs/s, {args.clients} clients, {SECONDS} s per run; CPU per pair of the "
            "client (SQL) or API process ('own'), PostgreSQL and wrk"
        )
        for rnd in range(args.rounds):
            for label in labels if rnd % 2 == 0 else labels[::-1]:
                with psycopg.connect(db, autocommit=True) as conn:
                    workloads.reset(conn, args.clients)
                if label == "direct SQL":
                    conns = [psycopg.connect(db, autocommit=True) for _ in range(args.clients)]
                    try:
                        with _accounted(None, db) as used:
                            m = runner.measure(conns, spread, seconds=SECONDS, warmup=0, seed=rnd)
                    finally:
                        for c in conns:
                            c.close()
                    own = _report(label, m.throughput, m.percentile_ms(0.99), used)
                    results[label].append((m.throughput, own))
                    continue
                if label in ("raw ASGI", "bare"):
                    proc, base = _stack_server(
                        db, "http_floor:" + ("app" if label == "bare" else "raw_app")
                    )
                    try:
                        with _accounted(proc.pid, db) as used:
                            row = http.run_wrk(base, "http-claim", args.clients, SECONDS)
                    finally:
                        proc.terminate()
                        proc.wait()
                else:
                    checkout = other if label.startswith("pgcapacity@") else None
                    with (
                        http.api_server(
                            db, cache_ttl_ms=0, pool_max=POOL, checkout=checkout
                        ) as base,
                        _accounted(_listening_pid(int(base.rsplit(":", 1)[1])), db) as used,
                    ):
                        row = http.run_wrk(base, "http-claim", args.clients, SECONDS)
                own = _report(label, row.ops_per_s, row.p99_ms, used)
                results[label].append((row.ops_per_s, own))
    print(f"median of {args.rounds} rounds: pairs/s, CPU us per pair of the API process or client")
    for label, runs in results.items():
        pairs = statistics.median(p for p, _ in runs)
        own = statistics.median(o for _, o in runs)
        print(f"{label:<22} {pairs:6.0f}  {own:5.0f} us")


if __name__ == "__main__":
    main()
