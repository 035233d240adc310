"""Bearer-token guards (SPEC §5): writes need a client or admin token, admin needs the admin
token and is disabled when none is configured. Reads are open."""

from __future__ import annotations

import hmac

from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler

from api.errors import ApiError
from api.settings import Settings


def _presented(connection: ASGIConnection) -> str | None:
    header = connection.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def _matches(token: str, accepted) -> bool:
    # compare_digest against every token: no early exit that would time the match
    return any([hmac.compare_digest(token.encode(), a.encode()) for a in accepted])


async def require_writer(connection: ASGIConnection, _: BaseRouteHandler) -> None:
    settings: Settings = connection.app.state.settings
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
    token = _presented(connection)
    if token is None:
        raise ApiError("UNAUTHORIZED", "this endpoint needs 'Authorization: Bearer <token>'")
    if not _matches(token, accepted):
        raise ApiError("UNAUTHORIZED", "the bearer token is not valid")


async def require_admin(connection: ASGIConnection, _: BaseRouteHandler) -> None:
    settings: Settings = connection.app.state.settings
    if not settings.admin_token:
        raise ApiError(
            "FORBIDDEN",
            "admin endpoints are disabled",
            {"hint": "set PGCAPACITY_ADMIN_TOKEN to enable them"},
        )
    token = _presented(connection)
    if token is None:
        raise ApiError("UNAUTHORIZED", "admin endpoints need 'Authorization: Bearer <admin token>'")
    if _matches(token, [settings.admin_token]):
        return
    if _matches(token, settings.client_tokens):
        raise ApiError("FORBIDDEN", "a client token may not use admin endpoints")
    raise ApiError("UNAUTHORIZED", "the bearer token is not valid")
