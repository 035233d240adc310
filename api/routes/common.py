"""Shared parameter types and OpenAPI response declarations."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from litestar.datastructures import State
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import HeaderParameter, PathParameter

from pgcapacity import rules
from pgcapacity.schemas import ErrorResponse
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
        pattern=rules.CODE_PATTERN,
        max_length=rules.CODE_INPUT_MAX_LENGTH,
        description=f"the code: {rules.CODE_RULE}",
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
