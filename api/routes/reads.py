"""Batch usage and the dashboard (cached reads)."""

from __future__ import annotations

from litestar import Controller, get, post
from litestar.datastructures import State
from litestar.params import JSONBody

from pgcapacity import rules
from pgcapacity.routes.common import BODY, DATABASE, errors, service
from pgcapacity.schemas import Dashboard, Usage, UsageRequest


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
