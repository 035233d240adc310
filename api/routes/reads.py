"""Batch usage and the dashboard (cached reads)."""

from __future__ import annotations

from typing import Annotated, Literal

from litestar import Controller, get, post
from litestar.datastructures import State
from litestar.params import JSONBody, QueryParameter

from pgcapacity import rules
from pgcapacity.auth import WRITERS
from pgcapacity.routes.common import (
    BEARER,
    BODY,
    DATABASE,
    WRITER,
    CodeFilter,
    PoolFilter,
    errors,
    service,
)
from pgcapacity.schemas import Activity, Dashboard, Usage, UsageRequest

Window = Annotated[
    Literal["1h", "1d"],
    QueryParameter(
        description="the last hour in 1-minute buckets, or the last day in 10-minute ones"
    ),
]


class UsageController(Controller):
    path = "/v1/usage"
    tags = ["codes"]

    @post(
        "/",
        operation_id="batchUsage",
        status_code=200,
        responses=errors(*BODY, *DATABASE),
        summary=f"Status of up to {rules.MAX_USAGE_BATCH} codes",
    )
    async def usage(self, state: State, data: JSONBody[UsageRequest]) -> Usage:
        """One row per requested code, in request order; unknown codes have `found: false`.
        One query however many codes; cached like a single status."""
        return await service(state).usage(data.codes)


class DashboardController(Controller):
    path = "/v1/dashboard"
    tags = ["dashboard"]

    @get("/", operation_id="dashboard", responses=errors(*DATABASE), summary="Per-pool summary")
    async def dashboard(self, state: State) -> Dashboard:
        """Codes, active/full/near-capacity codes, units used and total, active claims, and
        claims and expiries in the last hour, per pool. Refreshed by the running API within
        about PGCAPACITY_DASHBOARD_REFRESH_MS of a write (`refreshed_at` says when)."""
        return await service(state).dashboard()


class ActivityController(Controller):
    path = "/v1/activity"
    tags = ["dashboard"]

    @get(
        "/",
        operation_id="activity",
        middleware=[WRITERS],
        security=BEARER,
        responses=errors("VALIDATION_ERROR", "CODE_NOT_FOUND", *WRITER, *DATABASE),
        summary="Claims, releases, expiries, revokes and units in use over time",
    )
    async def activity(
        self,
        state: State,
        window: Window = "1h",
        code: CodeFilter = None,
        pool: PoolFilter = None,
    ) -> Activity:
        """From the event log (capacity.activity), for one code, one pool or every code:
        per bucket the events that committed in it and the units in use at its end, oldest
        first. Ended buckets are kept by the API, so polling reads only the newest ones."""
        if code is not None:
            code = rules.normalise_code(code)
        return await state.activity.read(window, code, pool)
