"""Claims: release, heartbeat. Both need the claim's token (ids are guessable)."""

from __future__ import annotations

from litestar import Controller, delete, post
from litestar.datastructures import State

from pgcapacity.auth import WRITERS
from pgcapacity.routes.common import (
    BEARER,
    DATABASE,
    WRITER,
    ClaimId,
    ClaimToken,
    errors,
    service,
)
from pgcapacity.schemas import Heartbeat, Release

# A bad id or token header, a wrong token or an ended claim, a claim row locked too long.
CLAIM_ERRORS = errors("VALIDATION_ERROR", *WRITER, "CLAIM_NOT_FOUND", "LOCK_CONTENDED", *DATABASE)


class ClaimsController(Controller):
    path = "/v1/claims"
    tags = ["claims"]
    middleware = [WRITERS]
    security = BEARER

    @delete(
        "/{claim_id:int}",
        operation_id="releaseClaim",
        status_code=200,
        responses=CLAIM_ERRORS,
        summary="Release a claim",
    )
    async def release(self, state: State, claim_id: ClaimId, token: ClaimToken) -> Release:
        """Gives the unit back. Idempotent: releasing an ended claim answers 200 with
        `released: false` and changes nothing. A wrong token is CLAIM_NOT_FOUND."""
        return await service(state).release(claim_id, token)

    @post(
        "/{claim_id:int}/heartbeat",
        operation_id="heartbeatClaim",
        status_code=200,
        responses=CLAIM_ERRORS,
        summary="Keep a claim alive",
    )
    async def heartbeat(self, state: State, claim_id: ClaimId, token: ClaimToken) -> Heartbeat:
        """Refreshes `last_seen_at` so idle expiry leaves the claim alone. CLAIM_NOT_FOUND
        when the claim has ended (released, expired, revoked): claim again."""
        return await service(state).heartbeat(claim_id, token)
