"""Admin actions: need the admin token; disabled (403) when PGCAPACITY_ADMIN_TOKEN is unset."""

from __future__ import annotations

from dataclasses import asdict

import msgspec
from litestar import Controller, post, put
from litestar.datastructures import State
from litestar.params import JSONBody

from pgcapacity.auth import ADMINS
from pgcapacity.errors import ApiError
from pgcapacity.routes.common import (
    ANY_ROUTE,
    BEARER,
    BODY,
    DATABASE,
    WRITER,
    CodePath,
    errors,
    service,
)
from pgcapacity.schemas import (
    ExpireRequest,
    ExpiryResult,
    HolderLimit,
    HolderLimitRequest,
    HolderReleaseRequest,
    PoolLimit,
    PoolLimitRequest,
    Release,
    RevokeResult,
    UpsertCodesRequest,
    UpsertResult,
)

ADMIN = (*WRITER, *DATABASE)  # FORBIDDEN also when PGCAPACITY_ADMIN_TOKEN is unset
# Writes that lock codes or holders: a lock held too long ends them (LOCK_CONTENDED).
LOCKING = ("LOCK_CONTENDED", *ADMIN)


class AdminController(Controller):
    path = "/v1/admin"
    tags = ["admin"]
    middleware = [ADMINS]
    security = BEARER

    @post(
        "/codes",
        operation_id="upsertCodes",
        status_code=200,
        responses=errors(*BODY, "CAPACITY_BELOW_USAGE", *LOCKING),
        summary="Create or update codes in one batch",
    )
    async def upsert_codes(self, state: State, data: JSONBody[UpsertCodesRequest]) -> UpsertResult:
        """One statement for the whole batch, all or nothing. Absent keys keep stored values
        on update; `max_uses` below current usage is CAPACITY_BELOW_USAGE."""
        return await service(state).upsert_codes(data.codes)

    @post(
        "/codes/{code:str}/revoke",
        operation_id="revokeCode",
        status_code=200,
        responses=errors("VALIDATION_ERROR", "CODE_NOT_FOUND", *LOCKING),
        summary="Deactivate a code, end its claims",
    )
    async def revoke(self, state: State, code: CodePath) -> RevokeResult:
        """Deactivates the code and ends its active claims (`end_reason = revoked`)."""
        return await service(state).revoke(code)

    @post(
        "/codes/{code:str}/release",
        operation_id="releaseHolder",
        status_code=200,
        responses=errors(*BODY, "CODE_NOT_FOUND", *LOCKING),
        summary="Release a holder's claim on a code, without its token",
    )
    async def release_holder(
        self, state: State, code: CodePath, data: JSONBody[HolderReleaseRequest]
    ) -> Release:
        """capacity.release(code, holder): for a client that lost a claim's id or token.
        Idempotent: without an active claim, `released: false` and `claim_id: null`."""
        return await service(state).release_holder(code, data.holder)

    @put(
        "/holder-limits",
        operation_id="setHolderLimit",
        responses=errors(*BODY, "CAPACITY_BELOW_USAGE", *LOCKING),
        summary="Set or remove a holder's limit in a pool",
    )
    async def set_holder_limit(
        self, state: State, data: JSONBody[HolderLimitRequest]
    ) -> HolderLimit:
        """`max_claims: null` means unlimited; a limit below the holder's active claims is
        CAPACITY_BELOW_USAGE."""
        await service(state).set_holder_limit(data.pool, data.holder, data.max_claims)
        return HolderLimit(data.pool, data.holder, data.max_claims)

    @put(
        "/pool-limits",
        operation_id="setPoolLimit",
        responses=errors(*BODY, "CAPACITY_BELOW_USAGE", *LOCKING),
        summary="Set or remove a pool's cap on units in use across its codes",
    )
    async def set_pool_limit(self, state: State, data: JSONBody[PoolLimitRequest]) -> PoolLimit:
        """`max_units: null` removes the cap; a cap below the units the pool's active claims
        hold is CAPACITY_BELOW_USAGE."""
        await service(state).set_pool_limit(data.pool, data.max_units)
        return PoolLimit(data.pool, data.max_units)

    @post(
        "/expire",
        operation_id="expireIdleClaims",
        status_code=200,
        responses=errors(*BODY, *ADMIN),
        summary="End claims idle for longer than idle_seconds",
    )
    async def expire(
        self, state: State, data: JSONBody[ExpireRequest | None] = None
    ) -> ExpiryResult:
        """One batch of capacity.expire_idle_claims(); call again while `more_pending`."""
        data = data or ExpireRequest()
        idle, batch = (
            None if v is msgspec.UNSET else v for v in (data.idle_seconds, data.batch_size)
        )
        return await service(state).expire_idle(idle, batch)

    @post(
        "/dashboard/refresh",
        operation_id="refreshDashboard",
        status_code=200,
        responses=errors(*ADMIN),
        summary="Refresh the dashboard now",
    )
    async def refresh_dashboard(self, state: State) -> dict:
        """Forces capacity.refresh_dashboard(force => true)."""
        return await service(state).refresh_dashboard(force=True)

    @post(
        "/cache/clear",
        operation_id="clearCache",
        status_code=200,
        responses=errors(*ADMIN),
        summary="Drop every cached result",
    )
    async def clear_cache(self, state: State) -> dict:
        """Drops this instance's cache and tells every other instance and worker to drop
        theirs (the change feed's NOTIFY). Returns this instance's cache statistics from
        just before the clear."""
        before = asdict(state.cache.stats())
        await service(state).clear_cache()
        return {"cleared": True, "before": before}

    @post(
        "/metrics/reset",
        operation_id="resetMetrics",
        status_code=200,
        responses=errors(*WRITER, *ANY_ROUTE),
        summary="Reset Prometheus series and performance windows",
    )
    async def reset_metrics(self, state: State) -> dict:
        """Counters restart from zero (Prometheus treats it as a restart). Refused (403) with
        several workers: their series live in files they all share."""
        if state.metrics.shared:
            raise ApiError(
                "FORBIDDEN",
                "metrics cannot be reset while several workers share them",
                {"hint": "restart the API to start every series again (PGCAPACITY_WORKERS > 1)"},
            )
        state.metrics.reset()
        return {"reset": True}
