"""The Litestar application: `create_app(settings)`."""

from __future__ import annotations

import contextlib
import gc
import os
import time

from litestar import Litestar
from litestar.config.cors import CORSConfig
from litestar.datastructures import State
from litestar.openapi import OpenAPIConfig
from litestar.openapi.spec import Components, OpenAPIType, Schema, SecurityScheme
from prometheus_client import multiprocess

from pgcapacity import __version__, rules, schemas
from pgcapacity.activity import ActivitySeries
from pgcapacity.background import Listener, Periodic, running
from pgcapacity.cache import ResultCache
from pgcapacity.db import describe, make_pool
from pgcapacity.errors import ErrorCatalog, handle_exception
from pgcapacity.events import Wakeup
from pgcapacity.metrics import Metrics, MetricsMiddleware
from pgcapacity.replicas import ReadRouting, Replica
from pgcapacity.routes.admin import AdminController
from pgcapacity.routes.claims import ClaimsController
from pgcapacity.routes.codes import CodesController
from pgcapacity.routes.docs import docs_assets, swagger_page
from pgcapacity.routes.events import EventsController
from pgcapacity.routes.ops import HealthController, MetricsController, home, whoami
from pgcapacity.routes.reads import ActivityController, DashboardController, UsageController
from pgcapacity.routes.ui import ui_routes
from pgcapacity.service import Capacity
from pgcapacity.settings import Settings

DESCRIPTION = """Capacity limits enforced inside PostgreSQL. Every operation is one call of a
`capacity.*` SQL function; errors carry the name, SQLSTATE and status of
`capacity.error_codes()`. Writes need `Authorization: Bearer <token>`; release and heartbeat
also need the claim's `X-Claim-Token`."""


def create_app(settings: Settings) -> Litestar:
    pool = make_pool(settings)
    cache = ResultCache(settings.cache_size, settings.cache_ttl_ms)
    replicas = [
        Replica(describe(url), make_pool(settings, url, f"pgcapacity-read-{i}"))
        for i, url in enumerate(settings.read_urls, 1)
    ]
    reads = ReadRouting(pool, replicas, settings.max_replica_lag_ms)
    service = Capacity(pool, cache, settings.lock_mode, reads)
    wakeup = Wakeup()
    listener = Listener(settings.listen_url or settings.database_url, cache, wakeup.notify)
    refresher = Periodic(
        "dashboard refresh", service.refresh_dashboard, settings.dashboard_refresh_ms
    )
    publisher = Periodic("change publishing", service.publish_changes, settings.change_feed_ms)
    tuner = Periodic(
        "hot code tuning",
        lambda: service.tune_slots(settings.hot_claims_per_min, settings.hot_slots),
        10_000,
    )
    expirer = Periodic(
        "idle expiry",
        lambda: service.expire_all_idle(settings.expire_idle_seconds),
        settings.expire_every_ms,
    )
    tuning = settings.hot_claims_per_min != 0
    background = [listener, publisher, refresher, reads]
    background += ([tuner] if tuning else []) + ([expirer] if settings.expire_idle else [])
    metrics = Metrics(cache, pool, expirer if settings.expire_idle else None)

    @contextlib.asynccontextmanager
    async def lifespan(app: Litestar):
        await pool.open(wait=True, timeout=max(settings.pool_timeout_ms / 1000, 10))
        await reads.open()
        try:
            async with pool.connection() as conn:
                app.state.catalog = await ErrorCatalog.load(conn)
            # What start-up built lives as long as the app: frozen out of the collector's
            # sight, so that a full collection no longer walks it (measured: stalls of
            # ~50 ms every few seconds under load, which all requests in flight waited).
            gc.collect()
            gc.freeze()
            async with running(*(task.run() for task in background)):
                yield
        finally:
            gc.unfreeze()
            await reads.close()
            await pool.close()
            if metrics.shared:  # its live gauges leave the sum
                multiprocess.mark_process_dead(os.getpid())

    state = State(
        {
            "settings": settings,
            "pool": pool,
            "cache": cache,
            "service": service,
            "reads": reads,
            "activity": ActivitySeries(pool),
            "listener": listener,
            "wakeup": wakeup,
            "refresher": refresher,
            "publisher": publisher,
            "tuner": tuner,
            "expirer": expirer,
            "metrics": metrics,
            "started": time.monotonic(),
        }
    )
    app = Litestar(
        route_handlers=[
            CodesController,
            ClaimsController,
            UsageController,
            DashboardController,
            ActivityController,
            EventsController,
            AdminController,
            HealthController,
            MetricsController,
            home,
            whoami,
            docs_assets(),
            *ui_routes(),
        ],
        state=state,
        lifespan=[lifespan],
        exception_handlers={Exception: handle_exception},
        request_max_body_size=settings.max_body_bytes,
        cors_config=_cors(settings),
        openapi_config=OpenAPIConfig(
            title="pgcapacity",
            version=__version__,
            description=DESCRIPTION,
            path="/docs",
            render_plugins=[swagger_page()],
            components=Components(
                security_schemes={"BearerToken": SecurityScheme(type="http", scheme="bearer")}
            ),
        ),
    )
    # Timed around the router, not as `middleware=` (Litestar runs that per route, after
    # routing): requests no route matches (404, 405) are counted too, under route
    # "unmatched". The same place Litestar's OpenTelemetry plugin wraps.
    app.asgi_handler = MetricsMiddleware(app.asgi_handler)
    _complete_openapi(app)
    return app


def _cors(settings: Settings) -> CORSConfig | None:
    """Browsers on PGCAPACITY_CORS_ORIGINS may call the API with a bearer token and read
    Retry-After and Allow; no cookies are involved, so no credentials mode."""
    if not settings.cors_origins:
        return None
    return CORSConfig(
        allow_origins=list(settings.cors_origins),
        allow_methods=["GET", "HEAD", "POST", "PUT", "DELETE"],
        allow_headers=["Authorization", "Content-Type", "X-Claim-Token"],
        expose_headers=["Retry-After", "Allow"],
    )


def _complete_openapi(app: Litestar) -> None:
    """Says in the OpenAPI document what the validation really does, where Litestar does
    not derive it: request bodies refuse unknown fields (msgspec forbid_unknown_fields),
    batch-usage items follow the code format, a holder limit is null or >= 0, and the
    optional counts keep their lower bound of 0 (Litestar leaves a bound of 0 out of an
    optional field's schema)."""
    names = {cls.__name__ for cls in schemas.Request.__subclasses__()} | {"CodeSpec"}
    components = app.openapi_schema.components.schemas or {}
    for name, component in components.items():
        if name in names:
            component.additional_properties = False
    components["UsageRequest"].properties["codes"].items = Schema(
        type=OpenAPIType.STRING,
        pattern=rules.CODE_PATTERN,
        max_length=rules.CODE_INPUT_MAX_LENGTH,
    )
    components["HolderLimitRequest"].properties["max_claims"] = Schema(
        one_of=[
            Schema(type=OpenAPIType.INTEGER, minimum=0, maximum=rules.MAX_INTEGER),
            Schema(type=OpenAPIType.NULL),
        ]
    )
    components["ExpireRequest"].properties["idle_seconds"].minimum = 0
    components["CodeSpec"].properties["slots"].minimum = 0
