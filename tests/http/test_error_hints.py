"""Every name in capacity.error_codes() reaches an HTTP client with its status, SQLSTATE
and a hint that says what to do."""

from __future__ import annotations

import re

import psycopg
import pytest

from tests.support import (
    ADMIN_AUTH,
    CLIENT_AUTH,
    api_client,
    assert_error,
    reset,
    settings_for,
)

pytestmark = pytest.mark.anyio
TOKEN = "8d0b0b43-6f8e-4d7a-9d3b-8d8f0c7f7e55"


@pytest.fixture
def codes(db):
    reset(
        db,
        [
            {"code": "FULL", "max_uses": 0},
            {"code": "OFF", "max_uses": 1, "is_active": False},
            {"code": "OLD", "max_uses": 1, "expires_at": "2000-01-01T00:00:00Z"},
            {"code": "LIMITED", "max_uses": 5, "pool": "reviews"},
            {"code": "BUSY", "max_uses": 5},
            {"code": "HELD", "max_uses": 5},
            {"code": "SPENT", "max_uses": 5, "max_total_claims": 0},
            {"code": "CAPPED", "max_uses": 5, "pool": "capped"},
        ],
    )
    with psycopg.connect(db, autocommit=True) as conn:
        conn.execute("SELECT capacity.set_pool_limit('capped', 0)")
        conn.execute("SELECT capacity.set_holder_limit('reviews', 'ann', 0)")
        conn.execute("SELECT capacity.claim('HELD', 'bob')")
    return db


def claim(code: str, **body):
    return ("POST", f"/v1/codes/{code}/claims", {"json": {"holder": "ann", **body}})


# (name, request) answered by an app with the usual settings and a row lock held on BUSY.
REQUESTS = {
    "VALIDATION_ERROR": claim("FULL", holder=""),
    "CODE_NOT_FOUND": claim("NOPE"),
    "CODE_INACTIVE": claim("OFF"),
    "CODE_EXPIRED": claim("OLD"),
    "CODE_FULL": claim("FULL"),
    "CODE_EXHAUSTED": claim("SPENT"),
    "HOLDER_LIMIT_EXCEEDED": claim("LIMITED"),
    "POOL_FULL": claim("CAPPED"),
    "CLAIM_NOT_FOUND": ("DELETE", "/v1/claims/999999", {"headers": {"X-Claim-Token": TOKEN}}),
    "LOCK_CONTENDED": claim("BUSY", lock_mode="nowait"),
    "CAPACITY_BELOW_USAGE": (
        "POST",
        "/v1/admin/codes",
        {"json": {"codes": [{"code": "HELD", "max_uses": 0}]}, "headers": ADMIN_AUTH},
    ),
    "UNAUTHORIZED": (
        "POST",
        "/v1/codes/FULL/claims",
        {"json": {"holder": "a"}, "headers": {"Authorization": "Bearer not-a-token"}},
    ),
    "FORBIDDEN": ("POST", "/v1/admin/cache/clear", {}),
    "NOT_FOUND": ("GET", "/v1/nothing", {}),
    "METHOD_NOT_ALLOWED": ("PUT", "/v1/codes/FULL", {}),
    "PAYLOAD_TOO_LARGE": claim("FULL", holder="h" * 1_100_000),
}


def documented(document: dict, method: str, url: str) -> set[str] | None:
    """The statuses the OpenAPI document lists for the operation `url` reaches (None: no
    route, as for NOT_FOUND)."""
    for template, item in document["paths"].items():
        pattern = re.sub(r"\\{[^}]+\\}", "[^/]+", re.escape(template))
        if re.fullmatch(pattern, url) and method.lower() in item:
            return set(item[method.lower()]["responses"])
    return None


async def answers(db: str) -> dict[str, dict]:
    """Every catalog name provoked over HTTP; returns each error object by name, and
    checks that the OpenAPI document lists each answer's status for its route."""
    seen = {}
    with psycopg.connect(db) as blocker:
        blocker.execute("SELECT 1 FROM capacity.codes WHERE code = 'BUSY' FOR UPDATE")
        async with api_client(settings_for(db)) as c:
            catalog = c.app.state.catalog
            document = (await c.get("/docs/openapi.json")).json()
            for name, (method, url, kwargs) in REQUESTS.items():
                kwargs = kwargs | {"headers": CLIENT_AUTH | kwargs.get("headers", {})}
                r = await c.request(method, url, **kwargs)
                seen[name] = assert_error(r, name, catalog.kind(name).http_status)
                statuses = documented(document, method, url)
                if name not in ("NOT_FOUND", "METHOD_NOT_ALLOWED"):  # no operation to list them
                    assert str(r.status_code) in statuses, f"{method} {url}: {name} undocumented"
        # SERVICE_UNAVAILABLE: the statement timeout ends a wait on the held row lock.
        async with api_client(settings_for(db, statement_timeout_ms=200, lock_timeout_ms=0)) as c:
            r = await c.post("/v1/codes/BUSY/claims", json={"holder": "x"}, headers=CLIENT_AUTH)
            seen["SERVICE_UNAVAILABLE"] = assert_error(r, "SERVICE_UNAVAILABLE", 503)
        blocker.rollback()
    # INTERNAL_ERROR: a database missing a function the API calls (a broken install).
    with psycopg.connect(db, autocommit=True) as conn:
        conn.execute("DROP FUNCTION capacity.usage_batch(text[])")
    async with api_client(settings_for(db)) as c:
        r = await c.post("/v1/usage", json={"codes": ["FULL"]})
        seen["INTERNAL_ERROR"] = assert_error(r, "INTERNAL_ERROR", 500)
    return seen


async def test_every_catalog_name_reaches_http_with_a_hint(codes):
    seen = await answers(codes)
    with psycopg.connect(codes) as conn:
        catalog = dict(conn.execute("SELECT name, hint FROM capacity.error_codes()").fetchall())
    assert set(seen) == set(catalog), "every name in error_codes() must be provoked here"
    for name, error in seen.items():
        assert error["details"]["hint"].strip(), name
    # The database's own HINT is kept where it is more precise than the catalog's.
    assert seen["CODE_NOT_FOUND"]["details"]["hint"] == catalog["CODE_NOT_FOUND"]
    assert "token" in seen["CLAIM_NOT_FOUND"]["details"]["hint"]
    assert "PGCAPACITY_MAX_BODY_BYTES" in seen["PAYLOAD_TOO_LARGE"]["details"]["hint"]
