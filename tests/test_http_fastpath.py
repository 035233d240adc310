"""Claim and release on the fast path (api/fastpath.py): it answers well-formed requests
exactly as the Litestar handlers do, and leaves everything else to them."""

from __future__ import annotations

from typing import Annotated

import pytest
from litestar import Litestar, delete, post
from litestar.params import PathParameter

from api.app import create_app
from api.fastpath import FAST_CLAIM, FAST_RELEASE, fast_routes
from tests.concurrency import reset
from tests.http_support import CLIENT_AUTH, api_client, assert_error, settings_for

pytestmark = pytest.mark.anyio
CLAIMS = "/v1/codes/FAST-1/claims"


@pytest.fixture
def fastdb(db):
    reset(db, [{"code": "FAST-1", "max_uses": 1}])
    return db


# A content type the handler accepts and the fast path leaves to it.
FOR_THE_HANDLER = CLIENT_AUTH | {"Content-Type": "application/json; charset=utf-8"}


def _answer(response) -> tuple:
    return response.status_code, response.headers["content-type"], response.content


async def test_claims_answered_by_the_fast_path_and_by_the_handler_are_the_same(fastdb):
    async with api_client(settings_for(fastdb)) as c:
        body = b'{"holder": "alice"}'
        headers = CLIENT_AUTH | {"Content-Type": "application/json"}
        served = FAST_CLAIM.served
        first = await c.post(CLAIMS, content=body, headers=headers)
        assert first.status_code == 201, first.text
        again_fast = await c.post(CLAIMS, content=body, headers=headers)
        assert FAST_CLAIM.served == served + 2
        again_handler = await c.post(CLAIMS, content=body, headers=FOR_THE_HANDLER)
        assert FAST_CLAIM.served == served + 2  # the handler answered this one
        assert again_fast.json()["already_held"] is True
        assert _answer(again_fast) == _answer(again_handler)  # byte for byte
        # An error of the operation itself is rendered as the handler renders it.
        full_fast = await c.post(CLAIMS, json={"holder": "bob"}, headers=CLIENT_AUTH)
        full_handler = await c.post(CLAIMS, content=b'{"holder": "bob"}', headers=FOR_THE_HANDLER)
        assert_error(full_fast, "CODE_FULL", 409)
        assert _answer(full_fast) == _answer(full_handler)
        assert FAST_CLAIM.served == served + 3


async def test_releases_answered_by_the_fast_path_and_by_the_handler_are_the_same(fastdb):
    async with api_client(settings_for(fastdb)) as c:
        claim = (await c.post(CLAIMS, json={"holder": "alice"}, headers=CLIENT_AUTH)).json()
        url, token = f"/v1/claims/{claim['claim_id']}", claim["token"]
        served = FAST_RELEASE.served
        released = await c.delete(url, headers=CLIENT_AUTH | {"X-Claim-Token": token})
        assert released.json()["released"] is True
        again_fast = await c.delete(url, headers=CLIENT_AUTH | {"X-Claim-Token": token})
        assert FAST_RELEASE.served == served + 2
        # The token without hyphens is valid for the handler; the fast path leaves it.
        hex_token = token.replace("-", "")
        again_handler = await c.delete(url, headers=CLIENT_AUTH | {"X-Claim-Token": hex_token})
        assert FAST_RELEASE.served == served + 2
        assert again_fast.json()["released"] is False
        assert _answer(again_fast) == _answer(again_handler)
        wrong = "00000000-0000-4000-8000-000000000000"
        assert_error(
            await c.delete(url, headers=CLIENT_AUTH | {"X-Claim-Token": wrong}),
            "CLAIM_NOT_FOUND",
            404,
        )
        assert FAST_RELEASE.served == served + 3


@pytest.mark.parametrize(
    "body",
    [
        b'{"holder": ""}',
        b'{"holder": "alice", "extra": 1}',
        b'{"holder": "alice", "lock_mode": "sometimes"}',
        b'{"holder": "alice"',
        b"[]",
    ],
)
async def test_bad_claims_are_left_to_the_handler(fastdb, body):
    async with api_client(settings_for(fastdb)) as c:
        served = FAST_CLAIM.served
        response = await c.post(
            CLAIMS, content=body, headers=CLIENT_AUTH | {"Content-Type": "application/json"}
        )
        assert_error(response, "VALIDATION_ERROR", 400)
        assert FAST_CLAIM.served == served
        # The handler read the body the fast path had read: the same answer as when the
        # fast path never looked at it.
        alone = await c.post(CLAIMS, content=body, headers=FOR_THE_HANDLER)
        assert _answer(response) == _answer(alone)


@pytest.mark.parametrize(
    ("headers", "name", "status"),
    [
        ({}, "UNAUTHORIZED", 401),
        ({"Authorization": "Bearer not-a-token"}, "UNAUTHORIZED", 401),
        ({"Authorization": "Bearer admin-secret", "Host": "bad host!"}, "VALIDATION_ERROR", 400),
    ],
)
async def test_requests_the_router_refuses_are_left_to_it(fastdb, headers, name, status):
    async with api_client(settings_for(fastdb)) as c:
        claims, releases = FAST_CLAIM.served, FAST_RELEASE.served
        claim = await c.post(CLAIMS, json={"holder": "alice"}, headers=headers)
        assert_error(claim, name, status)
        token = {"X-Claim-Token": "00000000-0000-4000-8000-000000000000"}
        assert_error(await c.delete("/v1/claims/1", headers=headers | token), name, status)
        assert (FAST_CLAIM.served, FAST_RELEASE.served) == (claims, releases)
        usage = (await c.get("/v1/codes/FAST-1")).json()["usage_count"]
        assert usage == 0


async def test_paths_the_router_also_routes_reach_the_handler_with_the_same_answer(fastdb):
    async with api_client(settings_for(fastdb)) as c:
        served = FAST_CLAIM.served
        slash = await c.post(CLAIMS + "/", json={"holder": "alice"}, headers=CLIENT_AUTH)
        assert slash.status_code == 201, slash.text  # Litestar routes the trailing slash
        assert FAST_CLAIM.served == served
        again = await c.post(CLAIMS, json={"holder": "alice"}, headers=CLIENT_AUTH)
        assert FAST_CLAIM.served == served + 1
        assert again.json() | {"already_held": False} == slash.json()


async def test_the_fast_path_is_timed_under_its_route_and_operation(fastdb):
    async with api_client(settings_for(fastdb)) as c:
        served = FAST_CLAIM.served
        await c.post(CLAIMS, json={"holder": "alice"}, headers=CLIENT_AUTH)
        assert FAST_CLAIM.served == served + 1
        text = (await c.get("/metrics")).text
        assert (
            'pgcapacity_http_request_duration_seconds_count{method="POST",'
            'route="/v1/codes/{code}/claims",status="201"} 1.0'
        ) in text
        assert 'pgcapacity_operations_total{operation="claimCode",outcome="ok"} 1.0' in text
        perf = (await c.get("/v1/performance")).json()
        assert perf["windows"]["1m"]["claimCode"]["requests"] == 1


def test_the_fast_paths_routes_are_the_apps_own():
    routes = {r.handler.operation_id: r for r in fast_routes(create_app(settings_for("x")))}
    claim, release = routes["claimCode"], routes["releaseClaim"]
    assert (claim.method, claim.template) == ("POST", "/v1/codes/{code}/claims")
    assert claim.pattern.fullmatch("/v1/codes/FAST-1/claims").group("code") == "FAST-1"
    assert (release.method, release.template) == ("DELETE", "/v1/claims/{claim_id}")
    assert release.pattern.fullmatch("/v1/claims/42").group("claim_id") == "42"
    # Only the canonical spelling: the router's other spellings go to the router.
    for path in ("/v1/codes/FAST-1/claims/", "//v1/codes/FAST-1/claims", "/v1/codes//claims"):
        assert claim.pattern.fullmatch(path) is None, path
    assert release.pattern.fullmatch("/v1/claims/x1") is None


def test_a_route_that_moves_takes_the_fast_path_with_it_or_leaves_it():
    @post("/v2/codes/{code:str}/claim", operation_id="claimCode")
    async def moved(
        code: Annotated[str, PathParameter()],
    ) -> None:  # pragma: no cover - never called
        pass

    @delete("/v2/claims/{claim:str}", operation_id="releaseClaim")
    async def renamed(
        claim: Annotated[str, PathParameter()],
    ) -> None:  # pragma: no cover - never called
        pass

    routes = fast_routes(Litestar([moved, renamed]))
    # The claim moved: served at its new path only. The release now declares another
    # parameter than the fast path reads: left to Litestar.
    assert [(r.handler.operation_id, r.template) for r in routes] == [
        ("claimCode", "/v2/codes/{code}/claim")
    ]
    assert routes[0].pattern.fullmatch("/v2/codes/A/claim")
    assert routes[0].pattern.fullmatch("/v1/codes/A/claims") is None
