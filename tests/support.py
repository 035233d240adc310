"""What the tests share: real connections racing, exact audits, a comparable snapshot of
the catalog, and the real HTTP app in process or behind a real uvicorn socket."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import psycopg
import uvicorn
from litestar.testing import AsyncTestClient

from pgcapacity import cluster, pgserver, rules
from pgcapacity.app import create_app
from pgcapacity.settings import Settings

LOCK_MODES = list(rules.LOCK_MODES)

# SQLSTATEs outside class CP that a caller must treat as "retry" (docs/contract.md, "Errors").
CONTENTION = {"55P03": "LOCK_CONTENDED", "40001": "LOCK_CONTENDED"}


def error_name(err: psycopg.Error) -> str:
    """pgcapacity error name from the message prefix, else the raw SQLSTATE.

    Deadlocks (40P01) are deliberately not folded into LOCK_CONTENDED here: the tests
    must see them, because the lock order promises there are none.
    """
    state = err.sqlstate or ""
    if state.startswith("CP"):
        return str(err.diag.message_primary).split(":", 1)[0]
    return CONTENTION.get(state, state)


def call(conn: psycopg.Connection, sql: str, params: Any = None) -> tuple[str, tuple | None]:
    """Runs one statement; returns ("ok", row) or (error name, None)."""
    try:
        return "ok", conn.execute(sql, params).fetchone()
    except psycopg.Error as err:
        if conn.info.transaction_status == psycopg.pq.TransactionStatus.INERROR:
            conn.rollback()
        return error_name(err), None


def run_concurrently(
    conninfo: str, n: int, work: Callable[[int, psycopg.Connection], Any], timeout: float = 300
) -> list[Any]:
    """Opens n connections, then starts work(i, conn) on all of them at the same instant."""
    conns = [psycopg.connect(conninfo, autocommit=True) for _ in range(n)]
    barrier = threading.Barrier(n)
    results: list[Any] = [None] * n
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            barrier.wait()
            results[i] = work(i, conns[i])
        except BaseException as err:  # re-raised in the main thread below
            errors.append(err)

    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(n)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout)
            if t.is_alive():
                raise TimeoutError(f"a worker did not finish within {timeout}s")
    finally:
        for c in conns:
            c.close()
    if errors:
        raise errors[0]
    return results


def audit(conninfo: str) -> dict[str, int]:
    """Asserts guarantee 1 (docs/contract.md) over the whole database (on a proxy: over
    every shard); returns totals."""
    if (shards := shards_of(conninfo)) is not None:
        return {"usage": sum(audit(url)["usage"] for url in shards)}
    with psycopg.connect(conninfo) as conn:
        broken = conn.execute("SELECT * FROM capacity._invariant_violations()").fetchall()
        assert broken == [], f"invariants broken (rule, subject, expected, found): {broken}"
        assert conn.execute("SELECT count(*) FROM capacity.reconcile()").fetchone()[0] == 0
        # The event log tells the same story: units claimed minus units given back is usage.
        by_events, usage = conn.execute("""
            SELECT (SELECT coalesce(sum(units) FILTER (WHERE kind = 'claimed'), 0)
                         - coalesce(sum(units) FILTER (WHERE kind IN ('released', 'expired', 'revoked')
                                                             AND claim_id IS NOT NULL), 0)
                      FROM capacity.events),
                   (SELECT coalesce(sum(usage_count), 0) FROM capacity.code_usage)
        """).fetchone()
        assert by_events == usage, f"event log says {by_events} units in use, codes say {usage}"
        return {"usage": int(usage)}


def psql(conninfo: str, *args: str, input: str | None = None) -> subprocess.CompletedProcess:
    """Runs Debian's psql against `conninfo` (stops at the first error)."""
    return subprocess.run(
        ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", conninfo, *args],
        input=input,
        capture_output=True,
        text=True,
        check=False,
    )


def shards_of(conninfo: str) -> list[str] | None:
    """The shard databases behind a pgcapacity proxy (None: not a proxy)."""
    with psycopg.connect(conninfo) as conn:
        return cluster.shard_urls_of(conn.execute(cluster.SHARD_OPTIONS).fetchone(), conninfo)


def reset(conninfo: str, codes: list[dict]) -> None:
    """Empties the capacity tables and creates the given codes (on a proxy: every shard's
    tables and the proxy's placement, the codes created through the proxy)."""
    import json

    shards = shards_of(conninfo)
    for url in shards or [conninfo]:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(
                "TRUNCATE capacity.events, capacity.claims, capacity.holders, capacity.code_slots,"
                " capacity.codes, capacity.pending_changes, capacity.pool_activity,"
                " capacity.pool_stripes, capacity.pool_limits"
            )
    with psycopg.connect(conninfo, autocommit=True) as conn:
        if shards:
            conn.execute("TRUNCATE capacity_cluster.pool_shards, capacity_cluster.code_shards")
        conn.execute("SELECT capacity.upsert_codes(%s::jsonb)", (json.dumps(codes),))


QUERIES = {
    "columns": """
        SELECT table_name, column_name, data_type, udt_name, is_nullable, column_default,
               is_identity, ordinal_position
          FROM information_schema.columns WHERE table_schema = 'capacity'
         ORDER BY table_name, ordinal_position""",
    "constraints": """
        SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid)
          FROM pg_constraint WHERE connamespace = 'capacity'::regnamespace
         ORDER BY 1, 2""",
    "indexes": """
        SELECT tablename, indexname, indexdef FROM pg_indexes
         WHERE schemaname = 'capacity' ORDER BY 1, 2""",
    "functions": """
        SELECT p.oid::regprocedure::text, pg_get_functiondef(p.oid), COALESCE(p.proacl, acldefault('f', p.proowner))::text
          FROM pg_proc p WHERE p.pronamespace = 'capacity'::regnamespace ORDER BY 1""",
    "views": """
        SELECT c.relname, pg_get_viewdef(c.oid, true), COALESCE(c.relacl, acldefault('r', c.relowner))::text
          FROM pg_class c WHERE c.relnamespace = 'capacity'::regnamespace AND c.relkind IN ('v', 'm')
         ORDER BY 1""",
    "types": """
        SELECT t.typname, t.typtype::text,
               (SELECT string_agg(a.attname || ' ' || format_type(a.atttypid, a.atttypmod), ', ' ORDER BY a.attnum)
                  FROM pg_attribute a WHERE a.attrelid = t.typrelid AND a.attnum > 0),
               (SELECT string_agg(e.enumlabel, ', ' ORDER BY e.enumsortorder) FROM pg_enum e WHERE e.enumtypid = t.oid)
          FROM pg_type t
         WHERE t.typnamespace = 'capacity'::regnamespace AND t.typtype IN ('c', 'e')
           AND (t.typrelid = 0 OR (SELECT relkind FROM pg_class WHERE oid = t.typrelid) = 'c')
         ORDER BY 1""",
    "relations": """
        SELECT c.relname, c.relkind::text, c.relpersistence::text, c.reloptions::text
          FROM pg_class c WHERE c.relnamespace = 'capacity'::regnamespace ORDER BY 1""",
    "triggers": """
        SELECT tgrelid::regclass::text, tgname, pg_get_triggerdef(oid)
          FROM pg_trigger WHERE NOT tgisinternal
           AND tgrelid IN (SELECT oid FROM pg_class WHERE relnamespace = 'capacity'::regnamespace)
         ORDER BY 1, 2""",
    "comments": """
        SELECT c.relname, obj_description(c.oid, 'pg_class') FROM pg_class c
         WHERE c.relnamespace = 'capacity'::regnamespace ORDER BY 1""",
    "table_acl": """
        SELECT c.relname, COALESCE(c.relacl, acldefault('r', c.relowner))::text FROM pg_class c
         WHERE c.relnamespace = 'capacity'::regnamespace AND c.relkind = 'r' ORDER BY 1""",
    "migrations": "SELECT name, kind, checksum, package_version FROM capacity.migrations ORDER BY name",
}


def snapshot(conninfo: str) -> dict[str, list[tuple]]:
    with psycopg.connect(conninfo) as conn:
        return {name: conn.execute(sql).fetchall() for name, sql in QUERIES.items()}


ADMIN = "admin-secret"
CLIENT = "client-secret"
ADMIN_AUTH = {"Authorization": f"Bearer {ADMIN}"}
CLIENT_AUTH = {"Authorization": f"Bearer {CLIENT}"}


def settings_for(conninfo: str, **overrides) -> Settings:
    # The API's own idle expiry is off unless a test is about it: a test that calls
    # POST /v1/admin/expire would otherwise meet it as the one runner allowed at a time.
    values = {"admin_token": ADMIN, "client_tokens": (CLIENT,), "pool_max": 4, "expire_idle": False}
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
    """The error shape of the HTTP API with the expected name and status."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}, body
    error = body["error"]
    assert error["code"] == name, body
    assert error["sqlstate"].startswith("CP") and error["message"], body
    assert isinstance(error["details"], dict), body
    assert error["details"].get("hint"), f"no hint: {body}"  # every error says what to do
    return error


def wait_for(condition, timeout: float = 15.0) -> bool:
    """Polls a condition (no fixed sleeps): True as soon as it holds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return False


def walk_every_route(conninfo: str) -> None:
    """A live API on `conninfo` (an application role's, on a server or a proxy) serving
    one request of every kind, admin routes included, each answered as it should be."""
    with (
        live_server(settings_for(conninfo)) as base,
        httpx.Client(base_url=base, headers=ADMIN_AUTH) as http,
    ):
        assert http.get("/health/ready").status_code == 200
        codes = [{"code": "LP-1", "max_uses": 2, "pool": "lp"}, {"code": "LP-2", "max_uses": 1}]
        assert http.post("/v1/admin/codes", json={"codes": codes}).status_code == 200
        limit = {"pool": "lp", "holder": "amy", "max_claims": 1}
        assert http.put("/v1/admin/holder-limits", json=limit).status_code == 200
        claim = http.post("/v1/codes/LP-1/claims", json={"holder": "amy"})
        assert claim.status_code == 201
        claim_id, token = claim.json()["claim_id"], {"X-Claim-Token": claim.json()["token"]}
        assert http.post(f"/v1/claims/{claim_id}/heartbeat", headers=token).status_code == 200
        assert http.get("/v1/codes/LP-1").json()["usage_count"] == 1
        assert http.post("/v1/usage", json={"codes": ["LP-1", "LP-2"]}).status_code == 200
        assert http.post("/v1/admin/dashboard/refresh").status_code == 200
        assert any(row["pool"] == "lp" for row in http.get("/v1/dashboard").json()["pools"])
        assert http.delete(f"/v1/claims/{claim_id}", headers=token).json()["released"] is True
        assert http.post("/v1/admin/expire", json={"idle_seconds": 3600}).status_code == 200
        assert http.post("/v1/admin/codes/LP-2/revoke").status_code == 200
        detailed = http.get("/health/detailed").json()
        assert detailed["status"] == "healthy" and detailed["listener"]["connected"] is True
        assert http.get("/metrics").status_code == 200
