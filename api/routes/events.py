"""The event stream (server-sent events)."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, get
from litestar.datastructures import State
from litestar.params import HeaderParameter, QueryParameter
from litestar.response import ServerSentEvent

from pgcapacity import events, rules
from pgcapacity.auth import WRITERS
from pgcapacity.routes.common import BEARER, DATABASE, WRITER, CodeFilter, PoolFilter, errors

LastEventId = Annotated[
    int | None,
    HeaderParameter(
        name="Last-Event-ID",
        ge=0,
        le=2**53 - 1,
        description="resume after this event (SSE clients send it when they reconnect)",
    ),
]
AfterEvent = Annotated[
    int | None,
    QueryParameter(
        ge=0,
        le=2**53 - 1,
        description="resume after this event, for clients that cannot set headers",
    ),
]


class EventsController(Controller):
    path = "/v1/events"
    tags = ["events"]

    @get(
        "/",
        operation_id="events",
        middleware=[WRITERS],
        security=BEARER,
        responses=errors("VALIDATION_ERROR", *WRITER, *DATABASE),
        summary="Claims, releases, expiries and revokes as they commit (server-sent events)",
        media_type="text/event-stream",
    )
    async def events(
        self,
        state: State,
        last_event_id: LastEventId = None,
        after: AfterEvent = None,
        code: CodeFilter = None,
        pool: PoolFilter = None,
    ) -> ServerSentEvent:
        """One SSE event per audit event: `id` is its event_id, `event` its kind (claimed,
        released, expired, revoked, reconciled), `data` the event as JSON. Without
        Last-Event-ID (or `after`) the stream starts with what commits from now on; with
        it, right after that event, missing none (an id older than the log kept resumes
        at the oldest event kept). Events arrive in delivery order: an event waits for the
        transactions that began writing before it. Each stream ends after five minutes;
        SSE clients reconnect by themselves, with Last-Event-ID."""
        if code is not None:
            code = rules.normalise_code(code)
        resume = last_event_id if last_event_id is not None else after
        return await events.stream(state.pool, state.wakeup, resume, code, pool)
