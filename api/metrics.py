"""Prometheus metrics and the /v1/performance windows, fed by one ASGI middleware.

Each app owns its registry (two apps in one process do not collide). The performance
windows keep 10-second buckets per operation for the last hour, each with a small
log-scale latency histogram, so memory is bounded whatever the request rate.

With several worker processes (PGCAPACITY_WORKERS > 1, `serve` sets
PROMETHEUS_MULTIPROC_DIR) the request, outcome and in-flight series use prometheus-client's
multiprocess mode: every worker writes them to files in that directory and a scrape
answered by any worker sums them all. Cache and pool figures, /v1/performance and
/health/detailed describe the worker that answered.
"""

from __future__ import annotations

import bisect
import os
import time
from collections import defaultdict
from dataclasses import dataclass, field

from litestar.types import ASGIApp, Message, Receive, Scope, Send
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector

BUCKET_SECONDS = 10
HORIZON_SECONDS = 3600
WINDOWS = {"1m": 60, "5m": 300, "1h": 3600}
# Latency bin upper edges in ms (log scale, 0.25 ms .. ~65 s); the last bin is open.
EDGES_MS = [0.25 * 2 ** (i / 2) for i in range(37)]
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


@dataclass
class _Bucket:
    count: int = 0
    failures: int = 0
    total_ms: float = 0.0
    max_in_flight: int = 0
    in_flight_sum: int = 0
    bins: list[int] = field(default_factory=lambda: [0] * (len(EDGES_MS) + 1))
    # Answers with a catalog error below 500 (a full code, a holder at its limit, bad
    # input, ...) by (error name, pool when the error names one).
    refusals: dict[tuple[str, str | None], int] = field(default_factory=dict)


class PerformanceWindows:
    def __init__(self, clock=time.monotonic, wall_clock=time.time):
        self._clock = clock
        self._wall_clock = wall_clock
        self._buckets: dict[str, dict[int, _Bucket]] = defaultdict(dict)
        self.in_flight = 0

    def record(
        self,
        operation: str,
        ms: float,
        ok: bool,
        in_flight: int,
        refusal: tuple[str, str | None] | None = None,
    ) -> None:
        slot = int(self._clock() // BUCKET_SECONDS)
        buckets = self._buckets[operation]
        b = buckets.get(slot)
        if b is None:
            b = buckets[slot] = _Bucket()
            for old in [s for s in buckets if s <= slot - HORIZON_SECONDS // BUCKET_SECONDS]:
                del buckets[old]
        b.count += 1
        b.failures += 0 if ok else 1
        b.total_ms += ms
        b.max_in_flight = max(b.max_in_flight, in_flight)
        b.in_flight_sum += in_flight
        b.bins[bisect.bisect_left(EDGES_MS, ms)] += 1
        if refusal is not None:
            b.refusals[refusal] = b.refusals.get(refusal, 0) + 1

    def reset(self) -> None:
        self._buckets.clear()

    @staticmethod
    def _percentile(bins: list[int], total: int, q: float) -> float | None:
        if not total:
            return None
        rank, seen = q * total, 0
        for i, n in enumerate(bins):
            seen += n
            if seen >= rank:
                return round(EDGES_MS[min(i, len(EDGES_MS) - 1)], 3)
        return round(EDGES_MS[-1], 3)

    def summary(self, operation: str, seconds: int) -> dict:
        now_slot = int(self._clock() // BUCKET_SECONDS)
        first = now_slot - seconds // BUCKET_SECONDS + 1
        picked = [b for s, b in self._buckets.get(operation, {}).items() if s >= first]
        count = sum(b.count for b in picked)
        failures = sum(b.failures for b in picked)
        bins = [sum(col) for col in zip(*(b.bins for b in picked), strict=False)] or []
        return {
            "requests": count,
            "success_rate": round(1 - failures / count, 4) if count else None,
            "avg_ms": round(sum(b.total_ms for b in picked) / count, 3) if count else None,
            "p50_ms": self._percentile(bins, count, 0.50),
            "p95_ms": self._percentile(bins, count, 0.95),
            "p99_ms": self._percentile(bins, count, 0.99),
            "throughput_per_minute": round(count * 60 / seconds, 2),
            "avg_concurrency": round(sum(b.in_flight_sum for b in picked) / count, 2)
            if count
            else 0,
            "max_concurrency": max((b.max_in_flight for b in picked), default=0),
        }

    def operations(self) -> list[str]:
        return sorted(self._buckets)

    def history(self, seconds: int = HORIZON_SECONDS, step: int = 60) -> dict:
        """Per operation, one point per `step` seconds of the last `seconds`, oldest first:
        when it began (Unix time), requests, error rate (answers of 500 and above),
        p50/p99 and refusals by error name. Steps without requests are left out."""
        per_step = step // BUCKET_SECONDS
        now_slot = int(self._clock() // BUCKET_SECONDS)
        first = now_slot - seconds // BUCKET_SECONDS + 1
        offset = self._wall_clock() - self._clock()  # monotonic -> Unix time
        operations = {}
        for op in self.operations():
            steps: dict[int, list[_Bucket]] = defaultdict(list)
            for slot, b in self._buckets[op].items():
                if slot >= first:
                    steps[slot // per_step].append(b)
            operations[op] = [self._point(n * step + offset, steps[n]) for n in sorted(steps)]
        return {"step_seconds": step, "operations": operations}

    def _point(self, at: float, picked: list[_Bucket]) -> dict:
        count = sum(b.count for b in picked)
        bins = [sum(col) for col in zip(*(b.bins for b in picked), strict=False)]
        refusals: dict[str, int] = defaultdict(int)
        for b in picked:
            for (name, _), n in b.refusals.items():
                refusals[name] += n
        return {
            "at": round(at, 3),
            "requests": count,
            "error_rate": round(sum(b.failures for b in picked) / count, 4) if count else None,
            "p50_ms": self._percentile(bins, count, 0.50),
            "p99_ms": self._percentile(bins, count, 0.99),
            "refusals": dict(refusals),
        }

    def refusals(self, seconds: int = HORIZON_SECONDS) -> list[dict]:
        """Refusals of the last `seconds` by operation, error name and pool, most first."""
        first = int(self._clock() // BUCKET_SECONDS) - seconds // BUCKET_SECONDS + 1
        totals: dict[tuple, int] = defaultdict(int)
        for op, buckets in self._buckets.items():
            for slot, b in buckets.items():
                if slot >= first:
                    for (name, pool), n in b.refusals.items():
                        totals[(op, name, pool)] += n
        return [
            {"operation": op, "error": name, "pool": pool, "count": n}
            for (op, name, pool), n in sorted(totals.items(), key=lambda kv: -kv[1])
        ]


def multiprocess_dir() -> str | None:
    """Where the workers' series are, when several processes serve (prometheus-client's
    own variable, read by it at import)."""
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


class Metrics:
    """The Prometheus registry of one app; `reset()` starts every series again from zero."""

    def __init__(self, cache, pool, expirer=None):
        self._cache = cache
        self._pool = pool
        self._expirer = expirer  # the API's idle expiry (background.Periodic), if it runs
        self.windows = PerformanceWindows()
        self.shared = multiprocess_dir() is not None
        self.reset()

    def reset(self) -> None:
        """In multiprocess mode only at start-up: the series live in files all workers share
        and would come back from them (the admin route refuses it there)."""
        self.registry = CollectorRegistry()
        self.requests = Histogram(
            "pgcapacity_http_request_duration_seconds",
            "HTTP request latency by route",
            ["method", "route", "status"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.outcomes = Counter(
            "pgcapacity_operations",
            "Operation outcomes by error name (ok when it succeeded)",
            ["operation", "outcome"],
            registry=self.registry,
        )
        in_flight = Gauge(
            "pgcapacity_http_requests_in_flight",
            "Requests being served",
            registry=self.registry,
            multiprocess_mode="livesum",  # the live workers' sum
        )
        if self.shared:
            self.in_flight = in_flight  # each worker writes its count to its file
        else:
            in_flight.set_function(lambda: self.windows.in_flight)  # read at scrape time
            self.in_flight = None
        self.state = _StateCollector(self._cache, self._pool, self._expirer)
        self.registry.register(self.state)
        self.windows.reset()
        # Labelled children by label values: labels() validates and locks on every call.
        self._request_children: dict[tuple[str, str, int], object] = {}
        self._outcome_children: dict[tuple[str, str], object] = {}

    def exposition(self) -> bytes:
        """The Prometheus text of a scrape: this app's registry, or with several workers the
        series of all of them (from their files) and this worker's cache and pool."""
        if not self.shared:
            return generate_latest(self.registry)
        registry = CollectorRegistry()
        MultiProcessCollector(registry)
        registry.register(self.state)
        return generate_latest(registry)

    def enter(self) -> int:
        self.windows.in_flight += 1
        if self.in_flight is not None:
            self.in_flight.inc()
        return self.windows.in_flight

    def leave(self) -> None:
        self.windows.in_flight -= 1
        if self.in_flight is not None:
            self.in_flight.dec()

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        key = (method, route, status)
        if (child := self._request_children.get(key)) is None:
            child = self._request_children[key] = self.requests.labels(method, route, str(status))
        child.observe(seconds)

    def count(self, operation: str, outcome: str) -> None:
        key = (operation, outcome)
        if (child := self._outcome_children.get(key)) is None:
            child = self._outcome_children[key] = self.outcomes.labels(operation, outcome)
        child.inc()


class _StateCollector:
    """Cache, connection pool, capacity per pool (the dashboard as last read) and idle
    expiry figures, read when Prometheus scrapes."""

    def __init__(self, cache, pool, expirer=None):
        self._cache = cache
        self._pool = pool
        self._expirer = expirer
        self.pools: list = []  # the dashboard's PoolSummary rows, set by the scrape

    def collect(self):
        stats = self._cache.stats()
        for name, value, text in (
            ("hits", stats.hits, "cache hits"),
            ("misses", stats.misses, "cache misses"),
            ("evictions", stats.evictions, "LRU evictions"),
            ("invalidations", stats.invalidations, "invalidations (local writes and NOTIFY)"),
        ):
            yield CounterMetricFamily(f"pgcapacity_cache_{name}", text, value=value)
        yield GaugeMetricFamily("pgcapacity_cache_entries", "entries in the cache", stats.size)
        g = GaugeMetricFamily("pgcapacity_pool", "psycopg-pool statistics", labels=["stat"])
        for key, value in self._pool.get_stats().items():
            g.add_metric([key], value)
        yield g
        yield from self._capacity()
        yield from self._expiry()

    def _capacity(self):
        codes = GaugeMetricFamily(
            "pgcapacity_pool_codes",
            "codes per capacity pool: all, active, full, near_capacity (90 % or more used)",
            labels=["pool", "state"],
        )
        units = GaugeMetricFamily(
            "pgcapacity_pool_units", "units per capacity pool: used, total", labels=["pool", "kind"]
        )
        claims = GaugeMetricFamily(
            "pgcapacity_pool_active_claims", "active claims per capacity pool", labels=["pool"]
        )
        for p in self.pools:
            for state, value in (
                ("all", p.codes),
                ("active", p.active_codes),
                ("full", p.full_codes),
                ("near_capacity", p.near_capacity_codes),
            ):
                codes.add_metric([p.pool, state], value)
            units.add_metric([p.pool, "used"], p.units_used)
            units.add_metric([p.pool, "total"], p.units_total)
            claims.add_metric(
                [
                    p.pool,
                ],
                p.active_claims,
            )
        yield from (codes, units, claims)

    def _expiry(self):
        if self._expirer is None:
            return  # PGCAPACITY_EXPIRE_IDLE=off: no series, so no alert on them
        yield CounterMetricFamily(
            "pgcapacity_idle_expiry_failures",
            "failed runs of the idle expiry",
            value=self._expirer.failures,
        )
        if self._expirer.last_success is not None:
            yield GaugeMetricFamily(
                "pgcapacity_idle_expiry_last_success_timestamp_seconds",
                "when the idle expiry last ran to the end (Unix time)",
                value=self._expirer.last_success,
            )


class MetricsMiddleware:
    """Times every HTTP request; /v1 operations also feed the performance windows.

    A plain ASGI middleware around Litestar's router (api/app.py), so that requests no
    route matched are timed too (route "unmatched"); the router fills in the route's
    template and handler before the call returns. Plain ASGI: ASGIMiddleware's scope and
    exclusion checks would cost a few microseconds more on every request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        metrics: Metrics = scope["app"].state.metrics
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        windows = metrics.windows
        in_flight = metrics.enter()
        started = time.perf_counter()
        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            elapsed = time.perf_counter() - started
            metrics.leave()
            route = scope.get("path_template") or "unmatched"
            metrics.observe(scope["method"], route, status, elapsed)
            handler = scope.get("route_handler")
            operation = getattr(handler, "operation_id", None)
            if isinstance(operation, str) and route.startswith("/v1/"):
                state = scope.get("state", {})
                error = state.get("error_name")
                metrics.count(operation, error or "ok")
                refusal = (error, state.get("error_pool")) if error and status < 500 else None
                windows.record(operation, elapsed * 1000, status < 500, in_flight, refusal)
