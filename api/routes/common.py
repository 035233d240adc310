"""Shared parameter types and OpenAPI response declarations."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from litestar.datastructures import State
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import HeaderParameter, PathParameter

from api.schemas import ErrorResponse
from api.service import Capacity

ClaimId = Annotated[int, PathParameter(ge=1, le=2**63 - 1, description="the claim's id")]
ClaimToken = Annotated[
    UUID,
    HeaderParameter(name="X-Claim-Token", description="the claim's token, returned by the claim"),
]
CodePath = Annotated[str, PathParameter(description="the code (trimmed and upper-cased)")]
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
