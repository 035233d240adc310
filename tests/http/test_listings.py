"""Listing and searching codes, a code's or a holder's active claims, one claim, the admin
release by holder, and CORS, through the real app."""

from __future__ import annotations

import pytest

from tests.support import (
    ADMIN_AUTH,
    CLIENT_AUTH,
    api_client,
    assert_error,
    audit,
    reset,
    settings_for,
)

pytestmark = pytest.mark.anyio


@pytest.fixture
def codes(db):
    reset(
        db,
        [{"code": f"ROOM-{i}", "max_uses": 2, "pool": "rooms"} for i in range(1, 6)]
        + [{"code": "DESK-1", "max_uses": 1, "pool": "desks"}],
    )
    return db


async def claim(c, code: str, holder: str) -> dict:
    r = await c.post(f"/v1/codes/{code}/claims", json={"holder": holder}, headers=CLIENT_AUTH)
    assert r.status_code == 201, r.text
    return r.json()


async def test_codes_page_by_page_with_search_and_pool(codes):
    async with api_client(settings_for(codes)) as c:
        await claim(c, "ROOM-2", "ann")
        first = (await c.get("/v1/codes?search=room&limit=3", headers=CLIENT_AUTH)).json()
        assert [s["code"] for s in first["codes"]] == ["ROOM-1", "ROOM-2", "ROOM-3"]
        assert first["codes"][1]["usage_count"] == 1 and first["next"] == "ROOM-3"
        rest = await c.get(
            f"/v1/codes?search=room&limit=3&after={first['next']}", headers=CLIENT_AUTH
        )
        assert [s["code"] for s in rest.json()["codes"]] == ["ROOM-4", "ROOM-5"]
        assert rest.json()["next"] is None
        desks = (await c.get("/v1/codes?pool=desks", headers=CLIENT_AUTH)).json()
        assert [s["code"] for s in desks["codes"]] == ["DESK-1"]
        assert_error(await c.get("/v1/codes"), "UNAUTHORIZED", 401)
        assert_error(
            await c.get("/v1/codes?limit=1001", headers=CLIENT_AUTH), "VALIDATION_ERROR", 400
        )


async def test_claims_of_a_code_and_of_a_holder_and_one_claim(codes):
    async with api_client(settings_for(codes)) as c:
        ann1 = await claim(c, "ROOM-1", "ann")
        await claim(c, "ROOM-1", "bob")
        await claim(c, "DESK-1", "ann")
        of_code = (await c.get("/v1/codes/room-1/claims", headers=CLIENT_AUTH)).json()
        assert [(x["holder"], x["code"]) for x in of_code["claims"]] == [
            ("ann", "ROOM-1"),
            ("bob", "ROOM-1"),
        ]
        assert all("token" not in x for x in of_code["claims"])
        of_ann = (await c.get("/v1/claims?holder=ann&limit=1", headers=CLIENT_AUTH)).json()
        assert [x["code"] for x in of_ann["claims"]] == ["ROOM-1"] and of_ann["next"]
        more = await c.get(f"/v1/claims?holder=ann&after={of_ann['next']}", headers=CLIENT_AUTH)
        assert [x["code"] for x in more.json()["claims"]] == ["DESK-1"]
        one = (await c.get(f"/v1/claims/{ann1['claim_id']}", headers=CLIENT_AUTH)).json()
        assert (one["holder"], one["released_at"], one["end_reason"]) == ("ann", None, None)
        assert "token" not in one
        assert_error(await c.get("/v1/claims/999999", headers=CLIENT_AUTH), "CLAIM_NOT_FOUND", 404)
        missing = await c.get("/v1/codes/NOPE/claims", headers=CLIENT_AUTH)
        assert_error(missing, "CODE_NOT_FOUND", 404)
    audit(codes)


async def test_an_admin_releases_a_holders_claim_without_its_token(codes):
    async with api_client(settings_for(codes)) as c:
        held = await claim(c, "DESK-1", "lost-token")
        url = "/v1/admin/codes/desk-1/release"
        r = await c.post(url, json={"holder": "lost-token"}, headers=ADMIN_AUTH)
        assert r.status_code == 200
        assert (r.json()["claim_id"], r.json()["released"]) == (held["claim_id"], True)
        again = await c.post(url, json={"holder": "lost-token"}, headers=ADMIN_AUTH)
        assert (again.json()["claim_id"], again.json()["released"]) == (None, False)
        by_client = await c.post(url, json={"holder": "x"}, headers=CLIENT_AUTH)
        assert_error(by_client, "FORBIDDEN", 403)
        one = (await c.get(f"/v1/claims/{held['claim_id']}", headers=CLIENT_AUTH)).json()
        assert one["end_reason"] == "released"
    assert audit(codes)["usage"] == 0


async def test_cors_answers_the_configured_origins_only(codes):
    preflight = {
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type",
    }
    allowed = "https://app.example.com"
    async with api_client(settings_for(codes, cors_origins=(allowed,))) as c:
        ok = await c.options("/v1/codes/ROOM-1/claims", headers=preflight | {"Origin": allowed})
        assert ok.status_code in (200, 204)
        assert ok.headers["access-control-allow-origin"] == allowed
        assert "authorization" in ok.headers["access-control-allow-headers"].lower()
        other = await c.get("/v1/codes/ROOM-1", headers={"Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in other.headers
        read = await c.get("/v1/codes/ROOM-1", headers={"Origin": allowed})
        assert read.headers["access-control-allow-origin"] == allowed
    async with api_client(settings_for(codes)) as c:
        plain = await c.get("/v1/codes/ROOM-1", headers={"Origin": allowed})
        assert "access-control-allow-origin" not in plain.headers
