"""Bearer auth on every protected route; health, metrics, performance; pool exhaustion."""

from __future__ import annotations

import asyncio
import time

import psycopg
import psycopg.conninfo
import pytest

from pgcapacity.app import create_app
from pgcapacity.auth import TokenAuth
from tests.support import (
    ADMIN_AUTH,
    CLIENT,
    CLIENT_AUTH,
    api_client,
    assert_error,
    reset,
    settings_for,
)

pytestmark = pytest.mark.anyio
TOKEN = {"X-Claim-Token": "8d0b0b43-6f8e-4d7a-9d3b-8d8f0c7f7e55"}
WRITES = [
    ("POST", "/v1/codes/AUTH-1/claims", {"json": {"holder": "a"}}),
    ("DELETE", "/v1/claims/1", {"headers": TOKEN}),
    ("POST", "/v1/claims/1/heartbeat", {"headers": TOKEN}),
    ("GET", "/v1/codes", {}),
    ("GET", "/v1/codes/AUTH-1/claims", {}),
    ("GET", "/v1/claims", {"params": {"holder": "a"}}),
    ("GET", "/v1/claims/1", {}),
    ("GET", "/v1/activity", {}),
    # (a malformed Last-Event-ID: a token that may read the stream gets 400, not a stream)
    ("GET", "/v1/events", {"headers": {"Last-Event-ID": "soon"}}),
]
ADMIN_ROUTES = [
    ("POST", "/v1/admin/codes", {"json": {"codes": [{"code": "AUTH-2", "max_uses": 1}]}}),
    ("POST", "/v1/admin/codes/AUTH-1/revoke", {}),
    ("POST", "/v1/admin/codes/AUTH-1/release", {"json": {"holder": "a"}}),
    (
        "PUT",
        "/v1/admin/holder-limits",
        {"json": {"pool": "default", "holder": "a", "max_claims": 5}},
    ),
    ("PUT", "/v1/admin/pool-limits", {"json": {"pool": "default", "max_units": 50}}),
    ("POST", "/v1/admin/expire", {"json": {"idle_seconds": 3600}}),
    ("POST", "/v1/admin/dashboard/refresh", {}),
    ("POST", "/v1/admin/cache/clear", {}),
    ("POST", "/v1/admin/metrics/reset", {}),
]


def protected_routes() -> set[tuple[str, str]]:
    """Every route of the app behind a token check, read from the app itself."""
    app = create_app(settings_for("postgresql://unused"))
    found = set()
    for route in app.routes:
        for handler in getattr(route, "route_handlers", []):
            if any(isinstance(m, TokenAuth) for m in handler.resolve_middleware()):
                for method in handler.http_methods - {"OPTIONS"}:  # CORS preflight is open
                    found.add((method, route.path))
    return found


def test_the_tables_below_cover_every_protected_route():
    protected = protected_routes()
    covered = {
        (method, template)
        for method, template in protected
        for m, path, _ in WRITES + ADMIN_ROUTES
        if m == method and _matches(template, path)
    }
    assert covered == protected and len(protected) == len(WRITES + ADMIN_ROUTES)


def _matches(template: str, path: str) -> bool:
    t, p = template.strip("/").split("/"), path.strip("/").split("/")
    return len(t) == len(p) and all(a == b or a.startswith("{") for a, b in zip(t, p, strict=True))


def _with(kwargs: dict, auth: dict) -> dict:
    return kwargs | {"headers": kwargs.get("headers", {}) | auth}


@pytest.fixture
def authdb(db):
    reset(db, [{"code": "AUTH-1", "max_uses": 10}])
    return db


@pytest.mark.parametrize(
    ("method", "url", "kwargs"),
    WRITES + ADMIN_ROUTES,
    ids=[f"{m} {u}" for m, u, _ in WRITES + ADMIN_ROUTES],
)
async def test_missing_and_wrong_tokens_are_401(authdb, method, url, kwargs):
    async with api_client(settings_for(authdb)) as c:
        r = await c.request(method, url, **kwargs)
        assert_error(r, "UNAUTHORIZED", 401)
        assert r.headers["www-authenticate"].startswith("Bearer")
        assert_error(
            await c.request(method, url, **_with(kwargs, {"Authorization": "Bearer nope"})),
            "UNAUTHORIZED",
            401,
        )
        assert_error(
            await c.request(method, url, **_with(kwargs, {"Authorization": f"Basic {CLIENT}"})),
            "UNAUTHORIZED",
            401,
        )


@pytest.mark.parametrize(
    ("method", "url", "kwargs"), WRITES, ids=[f"{m} {u}" for m, u, _ in WRITES]
)
async def test_client_and_admin_tokens_may_write(authdb, method, url, kwargs):
    async with api_client(settings_for(authdb)) as c:
        for auth in (CLIENT_AUTH, ADMIN_AUTH):
            r = await c.request(method, url, **_with(kwargs, auth))
            assert r.status_code not in (401, 403), r.text


@pytest.mark.parametrize(
    ("method", "url", "kwargs"), ADMIN_ROUTES, ids=[f"{m} {u}" for m, u, _ in ADMIN_ROUTES]
)
async def test_admin_routes_need_the_admin_token(authdb, method, url, kwargs):
    async with api_client(settings_for(authdb)) as c:
        assert_error(await c.request(method, url, **_with(kwargs, CLIENT_AUTH)), "FORBIDDEN", 403)
        r = await c.request(method, url, **_with(kwargs, ADMIN_AUTH))
        assert r.status_code == 200, r.text
    async with api_client(settings_for(authdb, admin_token=None)) as c:
        error = assert_error(
            await c.request(method, url, **_with(kwargs, ADMIN_AUTH)), "FORBIDDEN", 403
        )
        assert "PGCAPACITY_ADMIN_TOKEN" in error["details"]["hint"]


async def test_tokens_are_checked_before_the_request_is_read(authdb):
    """A request without a valid token learns nothing about its parameters or body."""
    async with api_client(settings_for(authdb)) as c:
        for method, url, kwargs in [
            ("POST", "/v1/codes/bad code!/claims", {"content": b"{not json"}),
            ("DELETE", "/v1/claims/0", {"headers": {"X-Claim-Token": "not-a-uuid"}}),
            ("POST", "/v1/admin/codes", {"json": {"codes": "nope"}}),
        ]:
            assert_error(await c.request(method, url, **kwargs), "UNAUTHORIZED", 401)


async def test_auth_off_opens_writes_but_never_admin(authdb):
    async with api_client(settings_for(authdb, auth=False)) as c:
        r = await c.post("/v1/codes/AUTH-1/claims", json={"holder": "open"})
        assert r.status_code == 201
        assert_error(await c.post("/v1/admin/cache/clear"), "UNAUTHORIZED", 401)


async def test_without_any_token_writes_are_refused_with_advice(authdb):
    async with api_client(settings_for(authdb, admin_token=None, client_tokens=())) as c:
        r = await c.post("/v1/codes/AUTH-1/claims", json={"holder": "a"}, headers=CLIENT_AUTH)
        assert "PGCAPACITY_CLIENT_TOKENS" in assert_error(r, "FORBIDDEN", 403)["details"]["hint"]


async def test_reads_are_open(authdb):
    async with api_client(settings_for(authdb)) as c:
        assert (await c.get("/v1/codes/AUTH-1")).status_code == 200
        assert (await c.post("/v1/usage", json={"codes": ["AUTH-1"]})).status_code == 200
        assert (await c.get("/v1/dashboard")).status_code == 200


async def test_health_endpoints(authdb):
    async with api_client(settings_for(authdb)) as c:
        assert (await c.get("/health/live")).json() == {"status": "alive"}
        ready = await c.get("/health/ready")
        assert ready.status_code == 200 and ready.json()["ready"] is True
        assert ready.json()["database"]["schema_version"] == "0.1.0"
        # Just after start-up the change listener may still be connecting (degraded): a
        # fresh app must settle to healthy, and /health must then agree.
        deadline = time.monotonic() + 10
        while (detailed := (await c.get("/health/detailed")).json())["status"] != "healthy":
            assert detailed["status"] == "degraded", detailed
            assert time.monotonic() < deadline, detailed
            await asyncio.sleep(0.05)
        assert {"pool", "cache", "database", "version", "recommendations"} <= set(detailed)
        assert detailed["pool"]["pool_max"] == 4 and detailed["recommendations"] == []
        assert (await c.get("/health")).json()["status"] == "healthy"


async def test_health_reports_an_unreachable_database(authdb, admin_conninfo):
    name = psycopg.conninfo.conninfo_to_dict(authdb)["dbname"]
    async with api_client(settings_for(authdb, pool_timeout_ms=300)) as c:
        with psycopg.connect(admin_conninfo, autocommit=True) as admin:
            admin.execute(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS false')
            # pg_terminate_backend only signals: wait until every session of the database is
            # gone (one that was still starting up shows itself later and is ended too).
            deadline = time.monotonic() + 30
            while admin.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = %s AND pid <> pg_backend_pid()",
                (name,),
            ).fetchone()[0]:
                assert time.monotonic() < deadline, "sessions of the database did not end"
                time.sleep(0.02)
            try:
                r = await c.get("/health/ready")
                assert r.status_code == 503 and r.json()["ready"] is False
                detailed = await c.get("/health/detailed")
                assert detailed.status_code == 503 and detailed.json()["status"] == "unhealthy"
                assert detailed.json()["recommendations"]
                claim = await c.post(
                    "/v1/codes/AUTH-1/claims", json={"holder": "x"}, headers=CLIENT_AUTH
                )
                assert_error(claim, "SERVICE_UNAVAILABLE", 503)
            finally:
                admin.execute(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS true')
        # and it recovers, once the pool's reconnection attempts (with backoff) succeed
        deadline = time.monotonic() + 30
        while (ready := await c.get("/health/ready")).status_code != 200:
            assert time.monotonic() < deadline, ready.json()
            await asyncio.sleep(0.05)


async def test_metrics_and_performance(authdb):
    async with api_client(settings_for(authdb, alert_avg_ms=0.0)) as c:
        for holder in ("m1", "m2"):
            await c.post("/v1/codes/AUTH-1/claims", json={"holder": holder}, headers=CLIENT_AUTH)
        await c.post("/v1/codes/NOPE/claims", json={"holder": "m3"}, headers=CLIENT_AUTH)
        await c.post("/v1/codes/AUTH-1/claims", json={"holder": "m4"})  # refused: no token
        await c.get("/v1/codes/AUTH-1")
        await c.get("/v1/codes/AUTH-1")
        text = (await c.get("/metrics")).text
        assert 'route="/v1/codes/{code}/claims"' in text
        assert 'pgcapacity_operations_total{operation="claimCode",outcome="ok"} 2.0' in text
        assert (
            'pgcapacity_operations_total{operation="claimCode",outcome="CODE_NOT_FOUND"} 1.0'
            in text
        )
        assert (
            'pgcapacity_operations_total{operation="claimCode",outcome="UNAUTHORIZED"} 1.0' in text
        )
        assert (
            'pgcapacity_http_request_duration_seconds_count{method="POST",'
            'route="/v1/codes/{code}/claims",status="401"} 1.0' in text
        )
        # The two GETs: a hit and a miss, or two misses when the change feed's NOTIFY of the
        # claims lands between them; and the scrape's read of the dashboard (the capacity
        # per pool). The exported counters are the cache's own.
        cache = c.app.state.cache.stats()
        assert cache.hits + cache.misses == 3
        assert f"pgcapacity_cache_hits_total {float(cache.hits)}" in text
        assert f"pgcapacity_cache_misses_total {float(cache.misses)}" in text
        assert 'pgcapacity_pool{stat="pool_max"} 4.0' in text
        perf = (await c.get("/v1/performance")).json()
        claim = perf["windows"]["1m"]["claimCode"]
        assert claim["requests"] == 4 and claim["success_rate"] == 1.0  # 401, 404: no failures
        assert claim["p50_ms"] is not None and claim["p99_ms"] >= claim["p50_ms"]
        assert set(perf["windows"]) == {"1m", "5m", "1h"}
        assert any(a["operation"] == "claimCode" and a["alert"] == "slow" for a in perf["alerts"])


async def test_requests_no_route_matched_are_counted(authdb):
    async with api_client(settings_for(authdb)) as c:
        assert (await c.get("/v1/nowhere")).status_code == 404
        assert (await c.put("/v1/codes/AUTH-1")).status_code == 405
        text = (await c.get("/metrics")).text
        for method, status in (("GET", 404), ("PUT", 405)):
            assert (
                f'pgcapacity_http_request_duration_seconds_count{{method="{method}",'
                f'route="unmatched",status="{status}"}} 1.0' in text
            ), text


async def test_pool_exhaustion_answers_503_quickly(authdb):
    settings = settings_for(authdb, pool_min=1, pool_max=1, pool_timeout_ms=200)
    async with api_client(settings) as c:
        async with c.app.state.pool.connection():  # the only connection is busy
            started = time.monotonic()
            r = await c.post("/v1/codes/AUTH-1/claims", json={"holder": "p"}, headers=CLIENT_AUTH)
            waited = time.monotonic() - started
        error = assert_error(r, "SERVICE_UNAVAILABLE", 503)
        assert "pool" in error["message"] and r.headers["retry-after"] == "1"
        assert waited < 10  # bounded by the pool timeout, not hanging
        ok = await c.post("/v1/codes/AUTH-1/claims", json={"holder": "p"}, headers=CLIENT_AUTH)
        assert ok.status_code == 201
