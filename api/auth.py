"""Bearer tokens: writes need a client or admin token, admin needs the admin token
and is disabled when none is configured. Reads are open.

The checks run as route middleware (`WRITERS`, `ADMINS` on the protected controllers and
handlers), before the request's parameters and body are read, so a request without a valid
token is refused whatever else is wrong with it. Not Litestar guards: Litestar hands every
guard call a copy of its route handler, which cost ~20 us per request on the claim path.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable

from litestar.types import ASGIApp, Receive, Scope, Send

from pgcapacity.errors import ApiError, send_error
from pgcapacity.settings import Settings


def presented_token(scope: Scope) -> str | None:
    """The token of an `Authorization: Bearer <token>` header, if the request has one."""
    header = next((v for k, v in scope["headers"] if k == b"authorization"), b"")
    scheme, _, token = header.decode("latin-1").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def _matches(token: str, accepted) -> bool:
    # compare_digest against every token: no early exit that would time the match
    return any([hmac.compare_digest(token.encode(), a.encode()) for a in accepted])


def require_writer(settings: Settings, token: str | None) -> None:
    """Raises UNAUTHORIZED/FORBIDDEN unless `token` may write (or auth is off)."""
    if not settings.auth:
        return
    accepted = settings.write_tokens
    if not accepted:
        raise ApiError(
            "FORBIDDEN",
            "writes are disabled: no token is configured",
            {
                "hint": "set PGCAPACITY_CLIENT_TOKENS or PGCAPACITY_ADMIN_TOKEN (or PGCAPACITY_AUTH=off)"
            },
        )
    if token is None:
        raise ApiError("UNAUTHORIZED", "this endpoint needs 'Authorization: Bearer <token>'")
    if not _matches(token, accepted):
        raise ApiError("UNAUTHORIZED", "the bearer token is not valid")


def require_admin(settings: Settings, token: str | None) -> None:
    """Raises UNAUTHORIZED/FORBIDDEN unless `token` is the admin token (auth on or off)."""
    if not settings.admin_token:
        raise ApiError(
            "FORBIDDEN",
            "admin endpoints are disabled",
            {"hint": "set PGCAPACITY_ADMIN_TOKEN to enable them"},
        )
    if token is None:
        raise ApiError("UNAUTHORIZED", "admin endpoints need 'Authorization: Bearer <admin token>'")
    if _matches(token, [settings.admin_token]):
        return
    if _matches(token, settings.client_tokens):
        raise ApiError("FORBIDDEN", "a client token may not use admin endpoints")
    raise ApiError("UNAUTHORIZED", "the bearer token is not valid")


def role_of(settings: Settings, token: str | None) -> dict:
    """What `token` may do: its role (admin, client or anonymous) and whether it may write
    and use the admin endpoints. Raises UNAUTHORIZED for a token that is not valid."""
    if token is None:
        role = "anonymous"
    elif settings.admin_token and _matches(token, [settings.admin_token]):
        role = "admin"
    elif _matches(token, settings.client_tokens):
        role = "client"
    else:
        raise ApiError("UNAUTHORIZED", "the bearer token is not valid")
    return {
        "role": role,
        "can_write": role != "anonymous" or not settings.auth,
        "can_admin": role == "admin",
    }


class TokenAuth:
    """Route middleware letting a request through when `require(settings, token)` passes,
    else answering with its error (a plain ASGI wrapper: ASGIMiddleware's per-request scope
    and exclusion checks have nothing to do here). Route middleware runs outside the
    route's exception handling, so the refusal is rendered here, by the app's own handler,
    and sent through the middleware above (the metrics see its status and error name)."""

    def __init__(self, require: Callable[[Settings, str | None], None]) -> None:
        self.require = require

    def __call__(self, app: ASGIApp) -> ASGIApp:
        require = self.require

        async def token_auth(scope: Scope, receive: Receive, send: Send) -> None:
            try:
                require(scope["app"].state.settings, presented_token(scope))
            except ApiError as refusal:
                await send_error(scope, receive, send, refusal)
                return
            await app(scope, receive, send)

        return token_auth


WRITERS = TokenAuth(require_writer)
ADMINS = TokenAuth(require_admin)
