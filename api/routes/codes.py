"""Codes: check one, claim a unit."""

from __future__ import annotations

from litestar import Controller, Response, get, post
from litestar.datastructures import State
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import JSONBody

from pgcapacity.auth import WRITERS
from pgcapacity.errors import ApiError
from pgcapacity.routes.common import BEARER, BODY, DATABASE, WRITER, CodePath, errors, service
from pgcapacity.schemas import Claim, ClaimRequest, CodeStatus

# Why capacity.claim() refuses a claim.
CLAIM_REFUSALS = (
    "CODE_NOT_FOUND",
    "CODE_INACTIVE",
    "CODE_EXPIRED",
    "CODE_FULL",
    "HOLDER_LIMIT_EXCEEDED",
)


class CodesController(Controller):
    path = "/v1/codes"
    tags = ["codes"]

    @get(
        "/{code:str}",
        operation_id="checkCode",
        responses=errors("VALIDATION_ERROR", "CODE_NOT_FOUND", *DATABASE),
        summary="Status of a code",
    )
    async def check(self, state: State, code: CodePath) -> CodeStatus:
        """Usage, remaining units and whether a claim would succeed now (`can_claim`, and
        `reason`: the error a claim would get). Takes no lock; served from the cache for up
        to PGCAPACITY_CACHE_TTL_MS, and invalidated at once by writes to the code."""
        status = await service(state).check(code)
        if not status.found:
            raise ApiError(
                "CODE_NOT_FOUND",
                f"CODE_NOT_FOUND: code {status.code} does not exist",
                {"code": status.code},
            )
        return status

    @post(
        "/{code:str}/claims",
        operation_id="claimCode",
        middleware=[WRITERS],
        security=BEARER,
        responses={
            200: ResponseSpec(
                data_container=Claim,
                description="already held: the holder's existing claim, no extra unit used",
            )
        }
        | errors(*BODY, *WRITER, *CLAIM_REFUSALS, "LOCK_CONTENDED", *DATABASE),
        summary="Claim one unit of a code",
    )
    async def claim(
        self, state: State, code: CodePath, data: JSONBody[ClaimRequest]
    ) -> Response[Claim]:
        """Atomically takes one unit for `holder`: 201 with the claim (keep `claim_id` and
        `token`: release and heartbeat need both). Claiming again while holding the code
        returns the same claim with 200 and `already_held: true`, using no extra unit."""
        claim = await service(state).claim(code, data.holder, data.lock_mode)
        return Response(claim, status_code=200 if claim.already_held else 201)
