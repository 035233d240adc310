"""Claim and release without Litestar's per-request machinery, for well-formed requests.

Why: on 2 cores shared with PostgreSQL, the API process's CPU per request decides the HTTP
claim throughput, and Litestar's request pipeline (request and kwargs models, signature
validation, response objects, header containers) costs more of it than the SQL call
(docs/benchmarks-history.md, "Claim and release on the fast path": a raw ASGI app on the same
uvicorn and psycopg pool served 18-38 % more pairs per second than the thinnest Litestar app).

How: `FAST_CLAIM` and `FAST_RELEASE` are route middleware of exactly those two handlers, the
innermost (after the token check, inside the metrics middleware). Each serves a request
only when it is plainly valid: the same msgspec types as the handler accept it (code, body,
claim id, token), the body has a Content-Length within the limit and JSON content type.
Then it calls the same service method and sends the same JSON the handler would. Anything
else (a malformed or unusual request, a chunked body) goes on, unchanged, to the Litestar
handler, so the handler stays the one definition of the endpoint: its validation errors,
its edge cases and the OpenAPI document. Errors of the operation itself (CODE_FULL,
database down, ...) are rendered by the app's own exception handler, as the handler's are.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from uuid import UUID

import msgspec
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from api import schemas
from api.errors import send_error

# What the route's own parameter types accept (api/routes/common.py), as msgspec types.
_decode_claim = msgspec.json.Decoder(schemas.ClaimRequest).decode
_encode = msgspec.json.Encoder().encode
_MAX_CLAIM_ID = 2**53 - 1
# The canonical form only; other spellings the handler may accept are left to it.
_TOKEN = re.compile(rb"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_JSON_HEADERS = [(b"content-type", b"application/json")]

# serve(path, scope, receive, send, route): answers the request, or awaits route(...) with it
Serve = Callable[["FastPath", Scope, Receive, Send, ASGIApp], Awaitable[None]]


class FastPath:
    """Route middleware answering with `serve` when it can (else `serve` calls the route).
    `served` counts the requests it answered (they never reach the handler)."""

    def __init__(self, serve: Serve):
        self._serve = serve
        self.served = 0

    # Litestar copies route handlers with their middleware: one instance, one count.
    def __copy__(self) -> FastPath:
        return self

    def __deepcopy__(self, memo: dict) -> FastPath:
        return self

    def __call__(self, app: ASGIApp) -> ASGIApp:
        async def fast_path(scope: Scope, receive: Receive, send: Send) -> None:
            await self._serve(self, scope, receive, send, app)

        return fast_path


async def _respond(send: Send, status: int, value: msgspec.Struct) -> None:
    body = _encode(value)
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [*_JSON_HEADERS, (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


def _header(scope: Scope, name: bytes) -> bytes | None:
    return next((v for k, v in scope["headers"] if k == name), None)


def _plain_json_body(scope: Scope) -> bool:
    """Whether the request declares a JSON body of acceptable length (else Litestar reads
    it: chunked bodies, other content types, the 413 for a body over the limit)."""
    length = _header(scope, b"content-length")
    return (
        _header(scope, b"content-type") == b"application/json"
        and length is not None
        and length.isdigit()
        and int(length) <= scope["app"].state.settings.max_body_bytes
    )


def _replaying(messages: list[Message], receive: Receive) -> Receive:
    """`receive` that first hands out the messages already read."""
    pending = list(messages)

    async def replay() -> Message:
        return pending.pop(0) if pending else await receive()

    return replay


async def _serve_claim(
    path: FastPath, scope: Scope, receive: Receive, send: Send, route: ASGIApp
) -> None:
    if not _plain_json_body(scope):
        await route(scope, receive, send)
        return
    messages: list[Message] = []
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request" or not message.get("more_body", False):
            break
    try:
        if message["type"] != "http.request":  # the client went away: as Litestar handles it
            raise msgspec.DecodeError
        code = msgspec.convert(scope["path_params"]["code"], schemas.CodeName)
        data = _decode_claim(b"".join(m.get("body", b"") for m in messages))
    except msgspec.DecodeError:  # (ValidationError is one)
        # The handler reads the same messages again and says what is wrong.
        await route(scope, _replaying(messages, receive), send)
        return
    path.served += 1
    try:
        claim = await scope["app"].state.service.claim(code, data.holder, data.lock_mode)
    except Exception as exc:  # rendered as the handler's errors are
        await send_error(scope, receive, send, exc)
        return
    await _respond(send, 200 if claim.already_held else 201, claim)


async def _serve_release(
    path: FastPath, scope: Scope, receive: Receive, send: Send, route: ASGIApp
) -> None:
    claim_id = scope["path_params"]["claim_id"]
    token = _header(scope, b"x-claim-token")
    if not 1 <= claim_id <= _MAX_CLAIM_ID or token is None or not _TOKEN.fullmatch(token):
        await route(scope, receive, send)
        return
    path.served += 1
    try:
        release = await scope["app"].state.service.release(claim_id, UUID(token.decode()))
    except Exception as exc:
        await send_error(scope, receive, send, exc)
        return
    await _respond(send, 200, release)


FAST_CLAIM = FastPath(_serve_claim)
FAST_RELEASE = FastPath(_serve_release)
