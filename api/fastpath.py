"""Claim and release without Litestar's per-request machinery, for well-formed requests.

Why: on 2 cores shared with PostgreSQL, the API process's CPU per request decides the HTTP
claim throughput, and Litestar's request pipeline (routing, request and kwargs models,
signature validation, response objects, header containers, its exception layer) costs
more of it than the SQL call (docs/benchmarks-history.md, "Claim and release on the fast
path"; "The fast path before the router").

How: `FastRoutes` sits between the metrics middleware and Litestar's router (api/app.py)
and answers exactly two requests itself: `POST /v1/codes/{code}/claims` and
`DELETE /v1/claims/{claim_id}` (at the paths their Litestar routes declare: `fast_routes`
derives its patterns from them), and only when they are plainly valid: the canonical
path, a valid Host header, a writer's token, the same msgspec types as the handlers
accept (code, body, claim id, token), a body with a Content-Length within the limit and
JSON content type. Then it calls the same service method and sends the same JSON the handler
would, with the route's template and handler in the scope as the router puts them (the
metrics label it the same). Anything else (a missing or wrong token, a malformed or
unusual request, a chunked body, another path) goes on, unchanged, to Litestar, so the
handlers stay the one definition of the endpoints: their refusals, validation errors,
edge cases and the OpenAPI document. Errors of the operation itself (CODE_FULL, database
down, ...) are rendered by the app's own exception handler, as the handlers' are.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import NamedTuple
from uuid import UUID

import msgspec
from litestar import Litestar
from litestar.handlers import HTTPRouteHandler
from litestar.routes import HTTPRoute
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from api import schemas
from api.auth import presented_token, require_writer
from api.errors import ApiError, send_error

try:  # the router's own Host check; private to Litestar, so without it nothing is fast
    from litestar._asgi.utils import is_valid_host
except ImportError:  # pragma: no cover - a Litestar that moved it

    def is_valid_host(host: bytes) -> bool:
        return False


# What the route's own parameter types accept (api/routes/common.py), as msgspec types.
_decode_claim = msgspec.json.Decoder(schemas.ClaimRequest).decode
_encode = msgspec.json.Encoder().encode
_MAX_CLAIM_ID = 2**53 - 1
# The canonical form only; other spellings the handler may accept are left to it.
_TOKEN = re.compile(rb"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_JSON_HEADERS = [(b"content-type", b"application/json")]

# serve(scope, receive, send, app): answers the request, or hands it to `app` (Litestar)
Serve = Callable[[Scope, Receive, Send, ASGIApp], Awaitable[None]]
# A path parameter's spelling on the fast path, by its declared type.
_PARAMETER = {str: "[^/]+", int: "[0-9]{1,16}"}


class FastPath:
    """The requests of one operation the fast path answered (they never reach Litestar)."""

    def __init__(self) -> None:
        self.served = 0


FAST_CLAIM = FastPath()
FAST_RELEASE = FastPath()


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


async def _serve_claim(scope: Scope, receive: Receive, send: Send, app: ASGIApp) -> None:
    if not _plain_json_body(scope):
        await app(scope, receive, send)
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
        await app(scope, _replaying(messages, receive), send)
        return
    FAST_CLAIM.served += 1
    try:
        claim = await scope["app"].state.service.claim(code, data.holder, data.lock_mode)
    except Exception as exc:  # rendered as the handler's errors are
        await send_error(scope, receive, send, exc)
        return
    await _respond(send, 200 if claim.already_held else 201, claim)


async def _serve_release(scope: Scope, receive: Receive, send: Send, app: ASGIApp) -> None:
    claim_id = scope["path_params"]["claim_id"]
    token = _header(scope, b"x-claim-token")
    if not 1 <= claim_id <= _MAX_CLAIM_ID or token is None or not _TOKEN.fullmatch(token):
        await app(scope, receive, send)
        return
    FAST_RELEASE.served += 1
    try:
        release = await scope["app"].state.service.release(claim_id, UUID(token.decode()))
    except Exception as exc:
        await send_error(scope, receive, send, exc)
        return
    await _respond(send, 200, release)


class FastRoute(NamedTuple):
    """One operation the fast path answers, as its Litestar route declares it."""

    method: str
    pattern: re.Pattern[str]  # the route's path, canonical spelling, a group per parameter
    parameters: tuple[tuple[str, type], ...]  # (name, type) of each path parameter
    handler: HTTPRouteHandler
    template: str  # the route's path format, as the router puts it in the scope
    serve: Serve


# The operations of the fast path, with the path parameters their serve functions read.
_FAST_OPERATIONS: dict[str, tuple[dict[str, type], Serve]] = {
    "claimCode": ({"code": str}, _serve_claim),
    "releaseClaim": ({"claim_id": int}, _serve_release),
}


def fast_routes(litestar: Litestar) -> list[FastRoute]:
    """The fast path's routes, derived from the app's own: the fast path answers exactly
    the path each handler is routed at (in its canonical spelling), and leaves an operation
    to Litestar if its route declares other path parameters than the fast path reads."""
    routes = []
    for route in litestar.routes:
        if not isinstance(route, HTTPRoute):
            continue
        declared = {p.name: p.type for p in route.path_parameters.values()}
        for handler in route.route_handlers:
            expected, serve = _FAST_OPERATIONS.get(handler.operation_id, (None, None))
            if serve is None or declared != expected:
                continue
            parts = [
                re.escape(part)
                if isinstance(part, str)
                else f"(?P<{part.name}>{_PARAMETER[part.type]})"
                for part in route.path_components
            ]
            pattern = re.compile("/" + "/".join(parts))
            parameters = tuple(expected.items())
            for method in sorted(handler.http_methods):
                routes.append(
                    FastRoute(method, pattern, parameters, handler, route.path_format, serve)
                )
    return routes


class FastRoutes:
    """ASGI wrapper of Litestar's router answering well-formed claims and releases itself
    (see the module's docstring); everything else goes to `app`, the router."""

    def __init__(self, app: ASGIApp, litestar: Litestar) -> None:
        self.app = app
        self._routes = fast_routes(litestar)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        serve = self._fast(scope) if scope["type"] == "http" else None
        if serve is None:
            await self.app(scope, receive, send)
        else:
            await serve(scope, receive, send, self.app)

    def _fast(self, scope: Scope) -> Serve | None:
        """The fast path's function for this request, after putting the route into the
        scope as the router would; None when Litestar answers it (another route, an invalid
        Host, no writer's token: the route's own check refuses it)."""
        method, path = scope["method"], scope["path"]
        if scope.get("root_path"):
            return None
        for route in self._routes:
            if method == route.method and (m := route.pattern.fullmatch(path)):
                break
        else:
            return None
        host = _header(scope, b"host")
        if host is not None and not is_valid_host(host):
            return None
        try:
            require_writer(scope["app"].state.settings, presented_token(scope))
        except ApiError:
            return None
        scope["route_handler"], scope["path_template"] = route.handler, route.template
        scope["path_params"] = {name: kind(m.group(name)) for name, kind in route.parameters}
        return route.serve
