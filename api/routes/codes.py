"""Codes: check one, claim a unit."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, Request, Response, get, post
from litestar.datastructures import State
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import JSONBody, QueryParameter

from pgcapacity import rules
from pgcapacity.auth import WRITERS
from pgcapacity.errors import ApiError
from pgcapacity.routes.common import (
    BEARER,
    BODY,
    DATABASE,
    WRITER,
    AfterClaim,
    CodePath,
    Limit,
    PoolFilter,
    errors,
    service,
    unless_disconnected,
)
from pgcapacity.schemas import Claim, ClaimPage, ClaimRequest, CodePage, CodeStatus

Search = Annotated[
    str | None,
    QueryParameter(max_length=rules.CODE_INPUT_MAX_LENGTH, description="part of the code"),
]
AfterCode = Annotated[
    str | None,
    QueryParameter(
        pattern=rules.CODE_PATTERN,
        max_length=rules.CODE_INPUT_MAX_LENGTH,
        description="the previous page's `next`",
    ),
]

# Why capacity.claim() refuses a claim.
CLAIM_REFUSALS = (
    "CODE_NOT_FOUND",
    "CODE_INACTIVE",
    "CODE_EXPIRED",
    "CODE_FULL",
    "CODE_EXHAUSTED",
    "HOLDER_LIMIT_EXCEEDED",
    "POOL_FULL",
)


class CodesController(Controller):
    path = "/v1/codes"
    tags = ["codes"]

    @get(
        "/",
        operation_id="listCodes",
        middleware=[WRITERS],
        security=BEARER,
        responses=errors("VALIDATION_ERROR", *WRITER, *DATABASE),
        summary="List and search codes, a page at a time",
    )
    async def list_codes(
        self,
        state: State,
        search: Search = None,
        pool: PoolFilter = None,
        after: AfterCode = None,
        limit: Limit = rules.PAGE_SIZE,
    ) -> CodePage:
        """Codes in code order with their status (as GET /v1/codes/{code}); `search` keeps
        the codes containing it (case-insensitive). Pass `next` as `after` for the
        following page. Needs a token: a list of access codes is not for everyone."""
        return await service(state).list_codes(search, pool, after, limit)

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
        summary="Claim units of a code",
    )
    async def claim(
        self, state: State, request: Request, code: CodePath, data: JSONBody[ClaimRequest]
    ) -> Response[Claim]:
        """Atomically takes `units` units (default 1) for `holder`, all or none: 201 with
        the claim (keep `claim_id` and `token`: release and heartbeat need both). Claiming
        again while holding the code returns the same claim, with the units it holds, with
        200 and `already_held: true`, taking nothing more. With `lease` (or the code's
        default lease) the claim stops counting at `lease_expires_at` unless a heartbeat
        renews it. With `wait_ms` a claim the code (or its pool) has no room for waits in
        the code's queue, first come first served, for up to that long, holding a database
        connection while it waits; a longer wait than PGCAPACITY_MAX_WAIT_MS is shortened
        to it."""
        wait_ms = min(data.wait_ms, state.settings.max_wait_ms)
        claim = service(state).claim(
            code, data.holder, data.lock_mode, data.units, data.lease, wait_ms
        )
        claim = await (unless_disconnected(request, claim) if wait_ms else claim)
        return Response(claim, status_code=200 if claim.already_held else 201)

    @get(
        "/{code:str}/claims",
        operation_id="listCodeClaims",
        middleware=[WRITERS],
        security=BEARER,
        responses=errors("VALIDATION_ERROR", *WRITER, "CODE_NOT_FOUND", *DATABASE),
        summary="The active claims of a code",
    )
    async def list_claims(
        self,
        state: State,
        code: CodePath,
        after: AfterClaim = 0,
        limit: Limit = rules.PAGE_SIZE,
    ) -> ClaimPage:
        """Active claims in claim order, without their tokens."""
        return await service(state).list_claims(code, None, after, limit)
