"""Shared parameter types and OpenAPI response declarations."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from litestar.datastructures import State
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import HeaderParameter, PathParameter

from pgcapacity.schemas import CODE_PATTERN, ErrorResponse
from pgcapacity.service import Capacity

# Ids stay below 2**53 (exact in JSON numbers and in float-based validators).
ClaimId = Annotated[int, PathParameter(ge=1, le=2**53 - 1, description="the claim's id")]
ClaimToken = Annotated[
    UUID,
    HeaderParameter(name="X-Claim-Token", description="the claim's token, returned by the claim"),
]
CodePath = Annotated[
    str,
    PathParameter(
        pattern=CODE_PATTERN,
        max_length=200,
        description="the code: 1-64 of A-Z 0-9 _ - (trimmed, case-insensitive)",
    ),
]
BEARER = [{"BearerToken": []}]


def errors(*statuses: int) -> dict[int, ResponseSpec]:
    """OpenAPI entries for the error statuses a handler can answer with."""
    return {
        s: ResponseSpec(
            data_container=ErrorResponse, description="error (see capacity.error_codes())"
        )
        for s in statuses
    }


def service(state: State) -> Capacity:
    return state.service
