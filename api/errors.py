"""The one place where failures become HTTP answers (docs/contract.md, "Errors").

Names, SQLSTATEs and statuses come from ``capacity.error_codes()`` (loaded once at start-up),
so the SQL, the HTTP API and the docs cannot disagree. Every answer has the shape
``{"error": {"code", "message", "sqlstate", "details"}}``, and ``details.hint`` always says
what to do (the database's HINT, else the catalog's hint for the name); nothing escapes as
a bare 500.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field

import psycopg
from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.types import Receive, Scope, Send
from psycopg_pool import PoolTimeout

from pgcapacity import rules

log = logging.getLogger("pgcapacity.api")

RETRY_AFTER_SECONDS = "1"
# capacity.error_codes()'s names with their SQLSTATE and status, restated for what is built
# before the database is reached: the OpenAPI document's responses. A test compares the
# two (tests/http/test_openapi.py); at run time the database's catalog is the one used.
CATALOG = {
    "VALIDATION_ERROR": ("CP001", 400),
    "CODE_NOT_FOUND": ("CP002", 404),
    "CODE_INACTIVE": ("CP003", 403),
    "CODE_EXPIRED": ("CP004", 410),
    "CODE_FULL": ("CP005", 409),
    "HOLDER_LIMIT_EXCEEDED": ("CP006", 409),
    "CLAIM_NOT_FOUND": ("CP007", 404),
    "LOCK_CONTENDED": ("CP008", 503),
    "CAPACITY_BELOW_USAGE": ("CP009", 409),
    "UNAUTHORIZED": ("CP010", 401),
    "FORBIDDEN": ("CP011", 403),
    "NOT_FOUND": ("CP012", 404),
    "METHOD_NOT_ALLOWED": ("CP013", 405),
    "PAYLOAD_TOO_LARGE": ("CP014", 413),
    "SERVICE_UNAVAILABLE": ("CP015", 503),
    "INTERNAL_ERROR": ("CP016", 500),
    "CODE_EXHAUSTED": ("CP017", 410),
    "POOL_FULL": ("CP018", 409),
}
# Statuses Litestar raises by itself, and the catalog name each one is reported under.
HTTP_STATUS_NAMES = {
    400: "VALIDATION_ERROR",
    401: "UNAUTHORIZED",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    413: "PAYLOAD_TOO_LARGE",
    503: "SERVICE_UNAVAILABLE",
}


@dataclass(frozen=True)
class ErrorKind:
    name: str
    sqlstate: str
    http_status: int
    description: str
    hint: str


# Only used if the database's catalog lacks a name (an older schema): never a bare crash.
LAST_RESORT = ErrorKind(
    "INTERNAL_ERROR", "CP016", 500, "unexpected failure", "Report it with the server log."
)


@dataclass
class ErrorCatalog:
    """capacity.error_codes(), indexed by name and by SQLSTATE (aliases included)."""

    by_name: dict[str, ErrorKind] = field(default_factory=dict)
    by_sqlstate: dict[str, ErrorKind] = field(default_factory=dict)

    @classmethod
    async def load(cls, conn: psycopg.AsyncConnection) -> ErrorCatalog:
        cur = await conn.execute(
            "SELECT name, sqlstate, http_status, description, hint, aliases"
            " FROM capacity.error_codes()"
        )
        catalog = cls()
        for row in await cur.fetchall():
            kind = ErrorKind(
                row["name"], row["sqlstate"], row["http_status"], row["description"], row["hint"]
            )
            catalog.by_name[kind.name] = kind
            for state in (kind.sqlstate, *row["aliases"]):
                catalog.by_sqlstate[state] = kind
        return catalog

    def kind(self, name: str) -> ErrorKind:
        return self.by_name.get(name) or LAST_RESORT


class ApiError(Exception):
    """A failure with a catalog name; rendered by `render`."""

    def __init__(
        self,
        name: str,
        message: str,
        details: dict | None = None,
        headers: dict[str, str] | None = None,
    ):
        super().__init__(message)
        self.name = name
        self.message = message
        self.details = details or {}
        self.headers = headers or {}  # e.g. the Allow header of a 405


def _db_details(err: psycopg.Error) -> dict:
    """DETAIL is JSON in pgcapacity's own errors; HINT rides along."""
    details: dict = {}
    diag = err.diag
    if diag.message_detail:
        try:
            parsed = json.loads(diag.message_detail)
            details = parsed if isinstance(parsed, dict) else {"detail": parsed}
        except ValueError:
            details = {"detail": diag.message_detail}
    if diag.message_hint:
        details["hint"] = diag.message_hint
    return details


def from_database(err: psycopg.Error, catalog: ErrorCatalog) -> ApiError:
    kind = catalog.by_sqlstate.get(err.sqlstate or "")
    if kind is None and (err.sqlstate or "").startswith("22"):
        kind = catalog.kind("VALIDATION_ERROR")  # data exceptions: the input was unusable
    if kind is None and isinstance(err, psycopg.OperationalError):
        kind = catalog.kind("SERVICE_UNAVAILABLE")  # connection lost, server shutting down
    if kind is None:
        log.error("unexpected database error %s: %s", err.sqlstate, err)
        return ApiError("INTERNAL_ERROR", "unexpected database error; nothing was changed")
    message = err.diag.message_primary or str(err)
    if kind.name == "SERVICE_UNAVAILABLE" and err.sqlstate == "57014":
        message = "the statement timed out (PGCAPACITY_STATEMENT_TIMEOUT_MS); nothing was changed"
    return ApiError(kind.name, message, _db_details(err))


# What a field must be, in words, where the validator would show its regular expression.
FIELD_RULES = {"code": rules.CODE_RULE, "holder": rules.HOLDER_RULE, "pool": rules.POOL_RULE}
_REGEX = re.compile(r"Expected `str` matching regex '(?:[^'\\]|\\.)*'")
_AT = re.compile(r" - at `(\$[^`]*)`$")  # msgspec's path of the value, e.g. $.codes[1]


def _readable(problem: dict) -> dict:
    """A validation problem as a person reads it: a missing body said so, a format broken
    said in words rather than as the validator's regular expression."""
    message, key = str(problem.get("message", "")), problem.get("key")
    if problem.get("source") == "body" and message == f"'{key}'":
        return problem | {"message": "the request needs a JSON body"}
    if _REGEX.search(message):
        at = _AT.search(message)
        where = at.group(1).removeprefix("$.") if at else str(key or "the value")
        names = re.findall(r"[A-Za-z_]+", where)
        field = "code" if names[-1:] == ["codes"] else (names[-1] if names else "")
        rule = FIELD_RULES.get(field)
        text = f"must be {rule}" if rule else "is not in the expected format"
        return problem | {"message": f"{where} {text}"}
    return problem


def from_http(exc: HTTPException, max_body_bytes: int) -> ApiError:
    name = HTTP_STATUS_NAMES.get(exc.status_code, "INTERNAL_ERROR")
    details: dict = {}
    message = exc.detail
    if isinstance(exc, ValidationException) and exc.extra:
        problems = [_readable(p) if isinstance(p, dict) else p for p in exc.extra]
        details["problems"] = problems
        first = problems[0]
        if isinstance(first, dict) and first.get("message"):
            message = f"invalid request: {first['message']}"
    if exc.status_code == 413:
        message = f"the request body is larger than {max_body_bytes} bytes"
        details = {"max_body_bytes": max_body_bytes}  # the catalog's hint names the setting
    headers = {"Allow": exc.headers["allow"]} if exc.headers and "allow" in exc.headers else {}
    return ApiError(name, message, details, headers)


def render(error: ApiError, catalog: ErrorCatalog) -> Response:
    kind = catalog.kind(error.name)
    headers = dict(error.headers)
    if kind.http_status == 503:
        headers["Retry-After"] = RETRY_AFTER_SECONDS
    if kind.http_status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="pgcapacity"'
    body = {
        "error": {
            "code": kind.name,
            "message": error.message,
            "sqlstate": kind.sqlstate,
            "details": error.details | {"hint": error.details.get("hint") or kind.hint},
        }
    }
    return Response(body, status_code=kind.http_status, headers=headers)


def handle_exception(request: Request, exc: Exception) -> Response:
    """Litestar's exception handler for every exception type."""
    catalog: ErrorCatalog = request.app.state.catalog
    if isinstance(exc, ApiError):
        error = exc
    elif isinstance(exc, PoolTimeout):  # before psycopg.Error: it is an OperationalError
        error = ApiError(
            "SERVICE_UNAVAILABLE",
            "no database connection became free in time (pool exhausted or database down); retry",
        )
    elif isinstance(exc, psycopg.Error):
        error = from_database(exc, catalog)
    elif isinstance(exc, HTTPException):
        error = from_http(exc, request.app.state.settings.max_body_bytes)
    else:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        error = ApiError("INTERNAL_ERROR", "unexpected error; nothing was changed")
    request.state.error_name = error.name
    if isinstance(pool := error.details.get("pool"), str):
        request.state.error_pool = pool  # refusals per pool (metrics, the web dashboard)
    return render(error, catalog)


async def send_error(scope: Scope, receive: Receive, send: Send, exc: Exception) -> None:
    """Answers with `exc` rendered by `handle_exception`: for route middleware, which runs
    outside the route's exception handling (the metrics middleware still sees the status
    and the error name)."""
    request = Request(scope, receive, send)
    response = handle_exception(request, exc)
    await response.to_asgi_response(app=None, request=request)(scope, receive, send)
