"""Shared parameter types and OpenAPI response declarations."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Awaitable
from typing import Annotated, Any, TypeVar
from uuid import UUID

from litestar import Request
from litestar.datastructures import State
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import Example
from litestar.params import HeaderParameter, PathParameter, QueryParameter

from pgcapacity import rules
from pgcapacity.errors import CATALOG, ApiError
from pgcapacity.schemas import ErrorResponse
from pgcapacity.service import Capacity

T = TypeVar("T")


async def unless_disconnected(request: Request, work: Awaitable[T]) -> T:
    """Awaits `work` (after the request's body was read); if the client disconnects first,
    cancels it, which makes psycopg cancel the statement: a claim waiting in a code's queue
    leaves the queue and takes nothing. Then SERVICE_UNAVAILABLE, which nobody reads."""
    task = asyncio.ensure_future(work)
    gone = asyncio.ensure_future(_disconnect(request))
    try:
        await asyncio.wait({task, gone}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        gone.cancel()
    if not task.done():
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        raise ApiError(
            "SERVICE_UNAVAILABLE",
            "SERVICE_UNAVAILABLE: the client went away while its claim waited",
        )
    return task.result()


async def _disconnect(request: Request) -> None:
    """Returns when the ASGI server reports that the client disconnected."""
    while (await request.receive())["type"] != "http.disconnect":
        pass


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
CodeFilter = Annotated[
    str | None,
    QueryParameter(
        pattern=rules.CODE_PATTERN,
        max_length=rules.CODE_INPUT_MAX_LENGTH,
        description="only this code",
    ),
]
PoolFilter = Annotated[
    str | None, QueryParameter(pattern=rules.POOL_PATTERN, description="only this pool")
]
BEARER = [{"BearerToken": []}]

# Paging of the listings: `after` is the `next` of the previous page.
Limit = Annotated[
    int,
    QueryParameter(ge=1, le=rules.MAX_PAGE_SIZE, description="rows per page (default 100)"),
]
AfterClaim = Annotated[
    int,
    QueryParameter(ge=0, le=2**53 - 1, description="the previous page's `next` (0: the start)"),
]

# The errors routes share, by what the route does. Every route can fail unexpectedly
# (INTERNAL_ERROR); one that calls the database can find it unavailable.
ANY_ROUTE = ("INTERNAL_ERROR",)
DATABASE = ("SERVICE_UNAVAILABLE", *ANY_ROUTE)
BODY = ("VALIDATION_ERROR", "PAYLOAD_TOO_LARGE")  # a JSON body: malformed, or too large
WRITER = ("UNAUTHORIZED", "FORBIDDEN")  # a bearer token is needed


def errors(*names: str) -> dict[int, ResponseSpec]:
    """OpenAPI responses for the catalog errors a route can answer with: one per status,
    naming its errors, with an example body of each."""
    by_status: dict[int, list[str]] = defaultdict(list)
    for name in dict.fromkeys(names):  # in order, once each
        by_status[CATALOG[name][1]].append(name)
    return {
        status: ResponseSpec(
            data_container=ErrorResponse,
            description=" or ".join(group) + " (capacity.error_codes())",
            generate_examples=False,
            examples=[_example(name) for name in group],
        )
        for status, group in sorted(by_status.items())
    }


def _example(name: str) -> Example:
    body: dict[str, Any] = {
        "error": {
            "code": name,
            "message": f"{name}: ...",
            "sqlstate": CATALOG[name][0],
            "details": {"hint": "..."},
        }
    }
    return Example(summary=name, value=body)


def service(state: State) -> Capacity:
    return state.service
