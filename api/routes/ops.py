"""Operations: health checks, Prometheus metrics, performance windows."""

from __future__ import annotations

import logging
import os
import time
from dataclasses import asdict
from typing import Any

import psycopg
from litestar import Controller, Request, Response, get, head
from litestar.datastructures import State
from litestar.openapi.datastructures import ResponseSpec
from litestar.response import Redirect
from prometheus_client import CONTENT_TYPE_LATEST
from psycopg_pool import PoolTimeout

from pgcapacity import __version__
from pgcapacity.auth import presented_token, role_of
from pgcapacity.db import fetch_one
from pgcapacity.metrics import WINDOWS
from pgcapacity.routes.common import ANY_ROUTE, errors

log = logging.getLogger("pgcapacity.api")

# Health answers carry their own body, 503 included (a load balancer reads the status).
UNHEALTHY = {
    503: ResponseSpec(
        data_container=dict[str, Any],
        description="unhealthy (or not ready): the same body, saying why",
        generate_examples=False,
    )
} | errors(*ANY_ROUTE)


async def _database(state: State) -> dict:
    """Installed schema version, timed as the round trip; never raises."""
    try:
        started = time.perf_counter()
        row = await fetch_one(state.pool, "SELECT capacity.version() AS version")
        ms = (time.perf_counter() - started) * 1000
        return {"reachable": True, "round_trip_ms": round(ms, 3), "schema_version": row["version"]}
    except Exception as err:
        return {"reachable": False, "error": str(err).strip()[:300]}


def _verdict(db: dict, state: State) -> tuple[str, list[str]]:
    advice: list[str] = []
    if not db["reachable"]:
        return "unhealthy", ["the database is unreachable: check DATABASE_URL and the server"]
    if db["schema_version"] != __version__:
        advice.append(
            f"schema is {db['schema_version']}, the API is {__version__}: run `pgcapacity migrate`"
        )
        return "unhealthy", advice
    pool = state.pool.get_stats()
    if pool.get("requests_waiting", 0) > 0:
        advice.append("requests are waiting for a connection: raise PGCAPACITY_POOL_MAX")
    if not state.listener.connected.is_set():
        advice.append(
            "the change listener is disconnected: other instances' writes reach this cache only by TTL"
        )
    if state.refresher.failures and state.refresher.last_result is None:
        advice.append("the dashboard refresh is failing: see the logs")
    if state.expirer.failures and state.expirer.last_result is None:
        advice.append("idle expiry is failing: see the logs")
    advice += state.reads.advice()
    return ("degraded" if advice else "healthy"), advice


async def _status(state: State) -> str:
    status, _ = _verdict(await _database(state), state)
    return status


def _ready(db: dict) -> bool:
    return db["reachable"] and db.get("schema_version") == __version__


@get("/", include_in_schema=False)
async def home() -> Redirect:
    """The API's root points to its documentation."""
    return Redirect("/docs")


@get(
    "/v1/whoami",
    operation_id="whoami",
    tags=["health"],
    security=[{"BearerToken": []}, {}],
    responses=errors("UNAUTHORIZED", *ANY_ROUTE),
    summary="What the presented token may do",
)
async def whoami(request: Request, state: State) -> dict:
    """`role` (admin, client or anonymous without a token), `can_write`, `can_admin`; a
    token that is not valid answers 401. The web dashboard checks its login with it."""
    return role_of(state.settings, presented_token(request.scope))


class HealthController(Controller):
    path = "/health"
    tags = ["health"]

    @get("/", operation_id="health", responses=UNHEALTHY, summary="Overall status")
    async def health(self, state: State) -> Response[dict]:
        """`healthy`, `degraded` (works, with a problem) or `unhealthy` (503)."""
        status = await _status(state)
        return Response(
            {"status": status, "version": __version__},
            status_code=503 if status == "unhealthy" else 200,
        )

    @head("/", operation_id="healthHead", responses=UNHEALTHY, summary="Overall status, no body")
    async def health_head(self, state: State) -> Response[None]:
        """The status of GET /health (200, or 503 when unhealthy) without its body."""
        status = await _status(state)
        return Response(None, status_code=503 if status == "unhealthy" else 200)

    @get("/live", operation_id="healthLive", responses=errors(*ANY_ROUTE), summary="Alive")
    async def live(self) -> dict:
        """Liveness: no database call."""
        return {"status": "alive"}

    @head("/live", operation_id="healthLiveHead", responses=errors(*ANY_ROUTE), summary="Alive")
    async def live_head(self) -> None:
        """Liveness without a body."""

    @get("/ready", operation_id="healthReady", responses=UNHEALTHY, summary="Ready to serve")
    async def ready(self, state: State) -> Response[dict]:
        """Ready when the database answers and its schema version is this API's version."""
        db = await _database(state)
        ready = _ready(db)
        return Response({"ready": ready, "database": db}, status_code=200 if ready else 503)

    @head("/ready", operation_id="healthReadyHead", responses=UNHEALTHY, summary="Ready, no body")
    async def ready_head(self, state: State) -> Response[None]:
        """The status of GET /health/ready without its body."""
        return Response(None, status_code=200 if _ready(await _database(state)) else 503)

    @get(
        "/detailed",
        operation_id="healthDetailed",
        responses=UNHEALTHY,
        summary="Everything, with advice",
    )
    async def detailed(self, state: State) -> Response[dict]:
        """Pool statistics, database round trip, cache statistics, version, listener and
        dashboard state, read replicas and their lag, an overall status and
        recommendations."""
        db = await _database(state)
        status, advice = _verdict(db, state)
        cache = state.cache.stats()
        body = {
            "status": status,
            "version": __version__,
            "database": db,
            "pool": state.pool.get_stats(),
            "cache": asdict(cache) | {"hit_rate": round(cache.hit_rate, 4)},
            "listener": {
                "connected": state.listener.connected.is_set(),
                "notifications": state.listener.notifications,
                "reconnects": state.listener.reconnects,
            },
            "dashboard": {
                "last_refresh": state.refresher.last_result,
                "failures": state.refresher.failures,
            },
            "read_replicas": state.reads.report(),
            "change_feed": {
                "last_publish": state.publisher.last_result,
                "failures": state.publisher.failures,
            },
            "hot_codes": {
                "last_switched": state.tuner.last_result,
                "failures": state.tuner.failures,
            },
            "idle_expiry": {
                "enabled": state.settings.expire_idle,
                "idle_seconds": state.settings.expire_idle_seconds,  # null: the SQL default
                "last_run": state.expirer.last_result,
                "failures": state.expirer.failures,
            },
            "uptime_seconds": round(time.monotonic() - state.started, 1),
            # With PGCAPACITY_WORKERS > 1, which worker answered (pool and cache are its own).
            "worker": {"pid": os.getpid(), "workers": state.settings.workers},
            "recommendations": advice,
        }
        return Response(body, status_code=503 if status == "unhealthy" else 200)


class MetricsController(Controller):
    path = "/"
    tags = ["metrics"]

    @get(
        "/metrics",
        operation_id="prometheusMetrics",
        summary="Prometheus metrics",
        media_type=CONTENT_TYPE_LATEST,
        responses=errors(*ANY_ROUTE),
    )
    async def metrics(self, state: State) -> Response[bytes]:
        """Request latency per route, operation outcomes by error name, cache, connection
        pool, capacity per pool (from the cached dashboard) and idle expiry."""
        try:
            state.metrics.state.pools = (await state.service.dashboard()).pools
        except (psycopg.Error, PoolTimeout) as err:  # the other figures are still worth a scrape
            log.warning("metrics: the dashboard could not be read (%s)", err)
        return Response(state.metrics.exposition(), media_type=CONTENT_TYPE_LATEST)

    @get(
        "/v1/performance/history",
        operation_id="performanceHistory",
        responses=errors(*ANY_ROUTE),
        summary="Latency, errors and refusals per minute",
    )
    async def performance_history(self, state: State) -> dict:
        """The last hour of this process's requests per operation, one point a minute
        (minutes without requests left out): `at` (Unix time), requests, error rate
        (answers of 500 and above), p50/p99 and refusals by error name; and the hour's
        refusals by operation, error name and pool (the pool when the error names one)."""
        windows = state.metrics.windows
        return windows.history() | {"refusals": windows.refusals()}

    @get(
        "/v1/performance",
        operation_id="performance",
        responses=errors(*ANY_ROUTE),
        summary="Latency and throughput windows",
    )
    async def performance(self, state: State) -> dict:
        """Per operation and window (1m, 5m, 1h): p50/p95/p99, success rate (answers below
        500), throughput per minute, concurrency; and alerts against the thresholds."""
        s = state.settings
        windows = state.metrics.windows
        report = {
            name: {op: windows.summary(op, seconds) for op in windows.operations()}
            for name, seconds in WINDOWS.items()
        }
        alerts = []
        for op, m in report["1m"].items():
            if m["requests"] == 0:
                continue
            if m["avg_ms"] > s.alert_avg_ms:
                alerts.append(
                    {
                        "operation": op,
                        "alert": "slow",
                        "value": m["avg_ms"],
                        "threshold": s.alert_avg_ms,
                    }
                )
            if m["success_rate"] < s.alert_success_rate:
                alerts.append(
                    {
                        "operation": op,
                        "alert": "failing",
                        "value": m["success_rate"],
                        "threshold": s.alert_success_rate,
                    }
                )
            if m["max_concurrency"] > s.alert_concurrency:
                alerts.append(
                    {
                        "operation": op,
                        "alert": "busy",
                        "value": m["max_concurrency"],
                        "threshold": s.alert_concurrency,
                    }
                )
        return {
            "windows": report,
            "in_flight": windows.in_flight,
            "alerts": alerts,
            "thresholds": {
                "avg_ms": s.alert_avg_ms,
                "success_rate": s.alert_success_rate,
                "concurrency": s.alert_concurrency,
                "window": "1m",
            },
        }
