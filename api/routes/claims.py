"""Claims: release, heartbeat. Both need the claim's token (ids are guessable)."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, delete, get, post
from litestar.datastructures import State
from litestar.params import QueryParameter

from pgcapacity import rules
from pgcapacity.auth import WRITERS
from pgcapacity.routes.common import (
    BEARER,
    DATABASE,
    WRITER,
    AfterClaim,
    ClaimId,
    ClaimToken,
    Limit,
    errors,
    service,
)
from pgcapacity.schemas import ClaimInfo, ClaimPage, Heartbeat, Release

HolderFilter = Annotated[
    str | None,
    QueryParameter(
        pattern=rules.HOLDER_PATTERN,
        max_length=rules.HOLDER_MAX_LENGTH,
        description="only this holder's claims",
    ),
]

# A bad id or token header, a wrong token or an ended claim, a claim row locked too long.
CLAIM_ERRORS = errors("VALIDATION_ERROR", *WRITER, "CLAIM_NOT_FOUND", "LOCK_CONTENDED", *DATABASE)


class ClaimsController(Controller):
    path = "/v1/claims"
    tags = ["claims"]
    middleware = [WRITERS]
    security = BEARER

    @get(
        "/",
        operation_id="listClaims",
        responses=errors("VALIDATION_ERROR", *WRITER, *DATABASE),
        summary="Active claims, of one holder or all",
    )
    async def list_claims(
        self,
        state: State,
        holder: HolderFilter = None,
        after: AfterClaim = 0,
        limit: Limit = rules.PAGE_SIZE,
    ) -> ClaimPage:
        """Active claims in claim order, without their tokens: a holder's in every pool,
        or every active claim. Pass `next` as `after` for the following page."""
        return await service(state).list_claims(None, holder, after, limit)

    @get(
        "/{claim_id:int}",
        operation_id="getClaim",
        responses=errors("VALIDATION_ERROR", *WRITER, "CLAIM_NOT_FOUND", *DATABASE),
        summary="One claim, active or ended",
    )
    async def get_claim(self, state: State, claim_id: ClaimId) -> ClaimInfo:
        """The claim without its token; ended claims stay visible until pruned."""
        return await service(state).get_claim(claim_id)

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
        """Refreshes `last_seen_at` so idle expiry leaves the claim alone, and renews its
        lease, if it has one, to `last_seen_at` plus the lease. CLAIM_NOT_FOUND when the
        claim has ended (released, expired, revoked) or is past its lease: claim again."""
        return await service(state).heartbeat(claim_id, token)
