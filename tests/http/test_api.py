"""Every endpoint through the real app and database: success paths and error paths."""

from __future__ import annotations

from datetime import datetime, timedelta

import psycopg
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


def snapshot(db: str) -> tuple:
    """Everything a bad request must leave untouched."""
    with psycopg.connect(db) as conn:
        return conn.execute("""
            SELECT (SELECT coalesce(json_agg(c ORDER BY code), '[]') FROM
                      (SELECT code, usage_count, max_uses, is_active FROM capacity.codes) c)::text,
                   (SELECT count(*) FROM capacity.claims),
                   (SELECT count(*) FROM capacity.claims WHERE released_at IS NULL),
                   (SELECT count(*) FROM capacity.events)
        """).fetchone()


@pytest.fixture
def fresh(db):
    reset(
        db,
        [
            {"code": "CLASS-7A", "max_uses": 2, "pool": "classroom"},
            {"code": "BILL-1", "max_uses": 1, "pool": "bills"},
        ],
    )
    return db


async def test_claim_check_heartbeat_release(fresh):
    async with api_client(settings_for(fresh)) as c:
        r = await c.get("/v1/codes/class-7a")
        assert r.status_code == 200
        assert r.json() | {} == {
            "code": "CLASS-7A",
            "found": True,
            "pool": "classroom",
            "is_active": True,
            "expires_at": None,
            "usage_count": 0,
            "max_uses": 2,
            "remaining": 2,
            "can_claim": True,
            "reason": None,
            "max_total_claims": None,
            "total_claims": None,
            "remaining_total": None,
        }
        r = await c.post("/v1/codes/class-7a/claims", json={"holder": "alice"}, headers=CLIENT_AUTH)
        assert r.status_code == 201, r.text
        claim = r.json()
        assert (
            claim["code"],
            claim["holder"],
            claim["usage_count"],
            claim["remaining"],
            claim["already_held"],
        ) == ("CLASS-7A", "alice", 1, 1, False)
        again = await c.post(
            "/v1/codes/CLASS-7A/claims", json={"holder": "alice"}, headers=CLIENT_AUTH
        )
        assert again.status_code == 200 and again.json()["already_held"] is True
        assert again.json()["claim_id"] == claim["claim_id"]
        # the local write invalidated the cached status at once
        assert (await c.get("/v1/codes/CLASS-7A")).json()["usage_count"] == 1

        token = {"X-Claim-Token": claim["token"]} | CLIENT_AUTH
        hb = await c.post(f"/v1/claims/{claim['claim_id']}/heartbeat", headers=token)
        assert hb.status_code == 200 and hb.json()["claim_id"] == claim["claim_id"]
        rel = await c.delete(f"/v1/claims/{claim['claim_id']}", headers=token)
        assert rel.status_code == 200
        assert rel.json() == {
            "claim_id": claim["claim_id"],
            "code": "CLASS-7A",
            "holder": "alice",
            "released": True,
            "usage_count": 0,
            "remaining": 2,
        }
        rel2 = await c.delete(f"/v1/claims/{claim['claim_id']}", headers=token)
        assert rel2.status_code == 200 and rel2.json()["released"] is False
        assert (await c.get("/v1/codes/CLASS-7A")).json()["usage_count"] == 0
        gone = await c.post(f"/v1/claims/{claim['claim_id']}/heartbeat", headers=token)
        assert_error(gone, "CLAIM_NOT_FOUND", 404)
    assert audit(fresh)["usage"] == 0


async def test_capacity_errors_carry_the_catalog_status(fresh):
    async with api_client(settings_for(fresh)) as c:
        ok = await c.post("/v1/codes/BILL-1/claims", json={"holder": "bob"}, headers=CLIENT_AUTH)
        assert ok.status_code == 201
        full = await c.post("/v1/codes/BILL-1/claims", json={"holder": "eve"}, headers=CLIENT_AUTH)
        error = assert_error(full, "CODE_FULL", 409)
        assert error["sqlstate"] == "CP005" and error["details"]["max_uses"] == 1
        assert (await c.get("/v1/codes/BILL-1")).json()["reason"] == "CODE_FULL"
        missing = await c.post("/v1/codes/NOPE/claims", json={"holder": "bob"}, headers=CLIENT_AUTH)
        assert_error(missing, "CODE_NOT_FOUND", 404)
        assert_error(await c.get("/v1/codes/NOPE"), "CODE_NOT_FOUND", 404)
        r = await c.post("/v1/admin/codes/BILL-1/revoke", headers=ADMIN_AUTH)
        assert r.status_code == 200 and r.json() == {"claims_ended": 1, "revoked": 1}
        again = await c.post("/v1/admin/codes/BILL-1/revoke", headers=ADMIN_AUTH)
        assert again.json() == {"claims_ended": 0, "revoked": 0}  # revoked, with none to end
        inactive = await c.post(
            "/v1/codes/BILL-1/claims", json={"holder": "x"}, headers=CLIENT_AUTH
        )
        assert_error(inactive, "CODE_INACTIVE", 403)
    audit(fresh)


BAD_REQUESTS = [
    ("malformed JSON", "post", "/v1/codes/CLASS-7A/claims", {"content": b'{"holder": '}, 400),
    ("wrong type", "post", "/v1/codes/CLASS-7A/claims", {"json": {"holder": 42}}, 400),
    ("unknown field", "post", "/v1/codes/CLASS-7A/claims", {"json": {"holder": "a", "x": 1}}, 400),
    ("missing field", "post", "/v1/codes/CLASS-7A/claims", {"json": {}}, 400),
    ("not an object", "post", "/v1/codes/CLASS-7A/claims", {"json": ["holder"]}, 400),
    ("empty holder", "post", "/v1/codes/CLASS-7A/claims", {"json": {"holder": ""}}, 400),
    ("blank holder", "post", "/v1/codes/CLASS-7A/claims", {"json": {"holder": "   "}}, 400),
    ("long holder", "post", "/v1/codes/CLASS-7A/claims", {"json": {"holder": "h" * 257}}, 400),
    (
        "bad lock mode",
        "post",
        "/v1/codes/CLASS-7A/claims",
        {"json": {"holder": "a", "lock_mode": "x"}},
        400,
    ),
    ("bad code", "post", "/v1/codes/no%20spaces!/claims", {"json": {"holder": "a"}}, 400),
    ("long code", "post", f"/v1/codes/{'A' * 65}/claims", {"json": {"holder": "a"}}, 400),
    ("bad code check", "get", "/v1/codes/%3Bdrop", {}, 400),
    (
        "oversized body",
        "post",
        "/v1/codes/CLASS-7A/claims",
        {"json": {"holder": "h" * 1_100_000}},
        413,
    ),
    ("no token header", "delete", "/v1/claims/1", {}, 400),
    ("bad token", "delete", "/v1/claims/1", {"headers": {"X-Claim-Token": "nope"}}, 400),
    (
        "claim id zero",
        "delete",
        "/v1/claims/0",
        {"headers": {"X-Claim-Token": "8d0b0b43-6f8e-4d7a-9d3b-8d8f0c7f7e55"}},
        400,
    ),
    (
        "claim id too big",
        "delete",
        f"/v1/claims/{2**63}",
        {"headers": {"X-Claim-Token": "8d0b0b43-6f8e-4d7a-9d3b-8d8f0c7f7e55"}},
        400,
    ),
    (
        "unknown claim",
        "delete",
        "/v1/claims/999999",
        {"headers": {"X-Claim-Token": "8d0b0b43-6f8e-4d7a-9d3b-8d8f0c7f7e55"}},
        404,
    ),
    ("usage not a list", "post", "/v1/usage", {"json": {"codes": "A"}}, 400),
    ("usage too many", "post", "/v1/usage", {"json": {"codes": ["A"] * 1001}}, 400),
    ("usage bad code", "post", "/v1/usage", {"json": {"codes": ["OK", "bad code"]}}, 400),
    ("no route", "get", "/v1/nothing", {}, 404),
    ("wrong method", "put", "/v1/codes/CLASS-7A", {}, 405),
]
ERROR_NAMES = {
    400: "VALIDATION_ERROR",
    404: None,
    405: "METHOD_NOT_ALLOWED",
    413: "PAYLOAD_TOO_LARGE",
}


@pytest.mark.parametrize(
    ("case", "method", "url", "kwargs", "status"), BAD_REQUESTS, ids=[b[0] for b in BAD_REQUESTS]
)
async def test_bad_input_is_a_clear_4xx_and_changes_nothing(
    fresh, case, method, url, kwargs, status
):
    before = snapshot(fresh)
    kwargs = dict(kwargs)
    kwargs["headers"] = kwargs.get("headers", {}) | CLIENT_AUTH
    async with api_client(settings_for(fresh)) as c:
        r = await c.request(method.upper(), url, **kwargs)
    name = ERROR_NAMES[status] or ("NOT_FOUND" if case == "no route" else "CLAIM_NOT_FOUND")
    assert_error(r, name, status)
    assert snapshot(fresh) == before


async def test_wrong_claim_token_releases_nothing(fresh):
    async with api_client(settings_for(fresh)) as c:
        claim = (
            await c.post("/v1/codes/CLASS-7A/claims", json={"holder": "a"}, headers=CLIENT_AUTH)
        ).json()
        before = snapshot(fresh)
        wrong = CLIENT_AUTH | {"X-Claim-Token": "8d0b0b43-6f8e-4d7a-9d3b-8d8f0c7f7e55"}
        assert_error(
            await c.delete(f"/v1/claims/{claim['claim_id']}", headers=wrong), "CLAIM_NOT_FOUND", 404
        )
        assert_error(
            await c.post(f"/v1/claims/{claim['claim_id']}/heartbeat", headers=wrong),
            "CLAIM_NOT_FOUND",
            404,
        )
        assert snapshot(fresh) == before


async def test_batch_usage_keeps_input_order(fresh):
    async with api_client(settings_for(fresh)) as c:
        r = await c.post("/v1/usage", json={"codes": ["bill-1", "NOPE", " class-7a "]})
        assert r.status_code == 200
        rows = r.json()["codes"]
        assert [(x["code"], x["found"], x["reason"]) for x in rows] == [
            ("BILL-1", True, None),
            ("NOPE", False, "CODE_NOT_FOUND"),
            ("CLASS-7A", True, None),
        ]
        # Every field, not only these: the batch's rows equal the single status.
        assert rows[0] == (await c.get("/v1/codes/BILL-1")).json()
        assert rows[2] == (await c.get("/v1/codes/CLASS-7A")).json()
        empty = await c.post("/v1/usage", json={"codes": []})
        assert empty.status_code == 200 and empty.json() == {"codes": []}


async def test_admin_actions(fresh):
    async with api_client(settings_for(fresh)) as c:
        up = await c.post(
            "/v1/admin/codes",
            headers=ADMIN_AUTH,
            json={
                "codes": [
                    {"code": "new-1", "max_uses": 5, "pool": "seats", "metadata": {"room": "A"}},
                    {"code": "CLASS-7A", "max_uses": 3},
                ]
            },
        )
        assert up.status_code == 200 and up.json() == {"inserted": 1, "updated": 1}
        status = (await c.get("/v1/codes/CLASS-7A")).json()
        assert (status["max_uses"], status["pool"]) == (3, "classroom")  # absent pool kept

        await c.post("/v1/codes/NEW-1/claims", json={"holder": "r"}, headers=CLIENT_AUTH)
        below = await c.post(
            "/v1/admin/codes",
            headers=ADMIN_AUTH,
            json={"codes": [{"code": "NEW-1", "max_uses": 0}]},
        )
        assert_error(below, "CAPACITY_BELOW_USAGE", 409)

        lim = await c.put(
            "/v1/admin/holder-limits",
            headers=ADMIN_AUTH,
            json={"pool": "classroom", "holder": "r", "max_claims": 0},
        )
        assert lim.status_code == 200 and lim.json()["max_claims"] == 0
        over = await c.post("/v1/codes/CLASS-7A/claims", json={"holder": "r"}, headers=CLIENT_AUTH)
        assert_error(over, "HOLDER_LIMIT_EXCEEDED", 409)
        under = await c.put(
            "/v1/admin/holder-limits",
            headers=ADMIN_AUTH,
            json={"pool": "seats", "holder": "r", "max_claims": 0},
        )
        assert_error(under, "CAPACITY_BELOW_USAGE", 409)

        capped = await c.put(
            "/v1/admin/pool-limits", headers=ADMIN_AUTH, json={"pool": "bills", "max_units": 0}
        )
        assert capped.status_code == 200 and capped.json() == {"pool": "bills", "max_units": 0}
        refused = await c.post("/v1/codes/BILL-1/claims", json={"holder": "p"}, headers=CLIENT_AUTH)
        assert_error(refused, "POOL_FULL", 409)
        below_pool = await c.put(
            "/v1/admin/pool-limits", headers=ADMIN_AUTH, json={"pool": "seats", "max_units": 0}
        )
        assert_error(below_pool, "CAPACITY_BELOW_USAGE", 409)
        uncapped = await c.put(
            "/v1/admin/pool-limits", headers=ADMIN_AUTH, json={"pool": "bills", "max_units": None}
        )
        assert uncapped.status_code == 200 and uncapped.json()["max_units"] is None

        exp = await c.post("/v1/admin/expire", headers=ADMIN_AUTH, json={"idle_seconds": 0})
        assert exp.status_code == 200 and exp.json()["expired"] == 1
        assert (await c.get("/v1/codes/NEW-1")).json()["usage_count"] == 0

        ref = await c.post("/v1/admin/dashboard/refresh", headers=ADMIN_AUTH)
        assert ref.status_code == 200 and ref.json()["refreshed"] is True
        board = (await c.get("/v1/dashboard")).json()
        assert {p["pool"] for p in board["pools"]} == {"bills", "classroom", "seats"}

        await c.get("/v1/codes/CLASS-7A")
        cleared = await c.post("/v1/admin/cache/clear", headers=ADMIN_AUTH)
        assert cleared.status_code == 200 and cleared.json()["before"]["size"] >= 1
        reset_m = await c.post("/v1/admin/metrics/reset", headers=ADMIN_AUTH)
        assert reset_m.status_code == 200
        assert "claimCode" not in (await c.get("/v1/performance")).json()["windows"]["1h"]
    audit(fresh)


async def test_lock_contention_is_503_with_retry_after(fresh):
    """A row lock held elsewhere: nowait gives up (CP008), wait hits lock_timeout (55P03)."""
    with psycopg.connect(fresh) as holder:
        holder.execute("SELECT 1 FROM capacity.codes WHERE code = 'CLASS-7A' FOR UPDATE")
        async with api_client(settings_for(fresh, lock_timeout_ms=50)) as c:
            for mode in ("nowait", "wait"):
                r = await c.post(
                    "/v1/codes/CLASS-7A/claims",
                    headers=CLIENT_AUTH,
                    json={"holder": f"h-{mode}", "lock_mode": mode},
                )
                assert_error(r, "LOCK_CONTENDED", 503)
                assert r.headers["retry-after"] == "1"
        holder.rollback()
    assert audit(fresh)["usage"] == 0


async def test_claim_and_release_in_the_spellings_litestar_accepts(fresh):
    """The claim and release routes are Litestar's own: a trailing slash is routed, a JSON
    content type with a charset is read, a token without hyphens is a UUID, and a Host
    header Litestar refuses is a 400 that claims nothing."""
    async with api_client(settings_for(fresh)) as c:
        bad_host = await c.post(
            "/v1/codes/BILL-1/claims",
            json={"holder": "alice"},
            headers=ADMIN_AUTH | {"Host": "bad host!"},
        )
        assert_error(bad_host, "VALIDATION_ERROR", 400)
        claim = await c.post(
            "/v1/codes/BILL-1/claims/",
            content=b'{"holder": "alice"}',
            headers=CLIENT_AUTH | {"Content-Type": "application/json; charset=utf-8"},
        )
        assert claim.status_code == 201, claim.text
        body = claim.json()
        token = body["token"].replace("-", "")
        released = await c.delete(
            f"/v1/claims/{body['claim_id']}", headers=CLIENT_AUTH | {"X-Claim-Token": token}
        )
        assert released.status_code == 200 and released.json()["released"] is True
        text = (await c.get("/metrics")).text
        assert (
            'pgcapacity_http_request_duration_seconds_count{method="POST",'
            'route="/v1/codes/{code}/claims",status="201"} 1.0'
        ) in text
        assert 'pgcapacity_operations_total{operation="releaseClaim",outcome="ok"} 1.0' in text
    audit(fresh)


async def test_validation_errors_say_what_is_wrong_in_words(fresh):
    async with api_client(settings_for(fresh, max_body_bytes=2048)) as c:
        no_body = assert_error(
            await c.post("/v1/codes/CLASS-7A/claims", headers=CLIENT_AUTH),
            "VALIDATION_ERROR",
            400,
        )
        assert no_body["message"] == "invalid request: the request needs a JSON body"
        spaced = assert_error(
            await c.post("/v1/codes/a%20b/claims", json={"holder": "x"}, headers=CLIENT_AUTH),
            "VALIDATION_ERROR",
            400,
        )
        assert spaced["message"] == (
            "invalid request: code must be 1-64 of A-Z 0-9 _ - (trimmed, case-insensitive)"
        )
        listed = assert_error(
            await c.post("/v1/usage", json={"codes": ["OK", "bad code"]}), "VALIDATION_ERROR", 400
        )
        assert listed["message"] == (
            "invalid request: codes[1] must be 1-64 of A-Z 0-9 _ - (trimmed, case-insensitive)"
        )
        assert "regex" not in str(listed) and "regex" not in str(spaced)
        big = assert_error(
            await c.post("/v1/usage", json={"codes": ["A"] * 1000}), "PAYLOAD_TOO_LARGE", 413
        )
        assert big["message"] == "the request body is larger than 2048 bytes"
        assert big["details"]["max_body_bytes"] == 2048
        assert "PGCAPACITY_MAX_BODY_BYTES" in big["details"]["hint"]


async def test_a_claim_of_several_units(fresh):
    async with api_client(settings_for(fresh)) as c:
        url = "/v1/codes/CLASS-7A/claims"
        group = await c.post(url, json={"holder": "group", "units": 2}, headers=CLIENT_AUTH)
        assert group.status_code == 201, group.text
        assert (group.json()["units"], group.json()["remaining"]) == (2, 0)
        again = await c.post(url, json={"holder": "group"}, headers=CLIENT_AUTH)
        assert (again.status_code, again.json()["units"]) == (200, 2)  # the claim held
        full = assert_error(
            await c.post(url, json={"holder": "solo"}, headers=CLIENT_AUTH), "CODE_FULL", 409
        )
        assert full["details"]["units"] == 1
        listed = (await c.get("/v1/codes/CLASS-7A/claims", headers=CLIENT_AUTH)).json()
        assert [claim["units"] for claim in listed["claims"]] == [2]
        before = snapshot(fresh)
        for units in (0, -1, 1.5, None, 2**31):
            bad = await c.post(url, json={"holder": "x", "units": units}, headers=CLIENT_AUTH)
            assert_error(bad, "VALIDATION_ERROR", 400)
        assert snapshot(fresh) == before
        claim = group.json()
        released = await c.delete(
            f"/v1/claims/{claim['claim_id']}",
            headers={"X-Claim-Token": claim["token"], **CLIENT_AUTH},
        )
        assert (released.json()["released"], released.json()["remaining"]) == (True, 2)
        assert audit(fresh)["usage"] == 0


async def test_leases_over_http(fresh):
    """A lease from the claim or the code's default; a lapsed claim frees its unit for the
    next claimer, and its holder can neither renew nor release it."""

    def lease_of(claim: dict) -> timedelta:
        return datetime.fromisoformat(claim["lease_expires_at"]) - datetime.fromisoformat(
            claim["claimed_at"]
        )

    async with api_client(settings_for(fresh)) as c:
        up = await c.post(
            "/v1/admin/codes",
            headers=ADMIN_AUTH,
            json={"codes": [{"code": "BILL-1", "max_uses": 1, "lease": "10 minutes"}]},
        )
        assert up.status_code == 200, up.text
        url = "/v1/codes/CLASS-7A/claims"
        given = await c.post(url, json={"holder": "a", "lease": "1h 30m"}, headers=CLIENT_AUTH)
        assert given.status_code == 201 and lease_of(given.json()) == timedelta(minutes=90)
        plain = await c.post(url, json={"holder": "b"}, headers=CLIENT_AUTH)
        assert plain.json()["lease_expires_at"] is None
        old = (
            await c.post("/v1/codes/BILL-1/claims", json={"holder": "crashed"}, headers=CLIENT_AUTH)
        ).json()
        assert lease_of(old) == timedelta(minutes=10)

        with psycopg.connect(fresh, autocommit=True) as conn:
            conn.execute(
                "UPDATE capacity.claims SET lease_expires_at = now() - interval '1 second'"
                " WHERE claim_id = %s",
                (old["claim_id"],),
            )
        new = await c.post("/v1/codes/BILL-1/claims", json={"holder": "next"}, headers=CLIENT_AUTH)
        assert new.status_code == 201 and new.json()["usage_count"] == 1, new.text
        token = {"X-Claim-Token": old["token"]} | CLIENT_AUTH
        gone = await c.post(f"/v1/claims/{old['claim_id']}/heartbeat", headers=token)
        assert_error(gone, "CLAIM_NOT_FOUND", 404)
        released = await c.delete(f"/v1/claims/{old['claim_id']}", headers=token)
        assert released.json()["released"] is False

        before = snapshot(fresh)
        for lease in ("0 s", "1.5 h", "PT15M", "8 h 2 w", "", 900, "1 mon"):
            bad = await c.post(url, json={"holder": "x", "lease": lease}, headers=CLIENT_AUTH)
            assert_error(bad, "VALIDATION_ERROR", 400)
        bad_code = await c.post(
            "/v1/admin/codes",
            headers=ADMIN_AUTH,
            json={"codes": [{"code": "BILL-1", "max_uses": 1, "lease": "soon"}]},
        )
        assert_error(bad_code, "VALIDATION_ERROR", 400)
        assert snapshot(fresh) == before
    assert audit(fresh)["usage"] == 3


async def test_redemption_caps_over_http(fresh):
    async with api_client(settings_for(fresh)) as c:
        up = await c.post(
            "/v1/admin/codes",
            headers=ADMIN_AUTH,
            json={"codes": [{"code": "INVITE-1", "max_uses": 5, "max_total_claims": 2}]},
        )
        assert up.status_code == 200, up.text
        url = "/v1/codes/INVITE-1/claims"
        for holder in ("a", "b"):
            claim = (await c.post(url, json={"holder": holder}, headers=CLIENT_AUTH)).json()
            released = await c.delete(
                f"/v1/claims/{claim['claim_id']}",
                headers={"X-Claim-Token": claim["token"], **CLIENT_AUTH},
            )
            assert released.json()["released"] is True
        spent = assert_error(
            await c.post(url, json={"holder": "c"}, headers=CLIENT_AUTH), "CODE_EXHAUSTED", 410
        )
        assert (spent["details"]["total_claims"], spent["details"]["max_total_claims"]) == (2, 2)
        status = (await c.get("/v1/codes/INVITE-1")).json()
        assert (status["total_claims"], status["remaining_total"], status["reason"]) == (
            2,
            0,
            "CODE_EXHAUSTED",
        )
        lower = await c.post(
            "/v1/admin/codes",
            headers=ADMIN_AUTH,
            json={"codes": [{"code": "INVITE-1", "max_uses": 5, "max_total_claims": 1}]},
        )
        assert_error(lower, "CAPACITY_BELOW_USAGE", 409)
        for spec in ({"slots": 4, "max_total_claims": 9}, {"max_total_claims": -1}):
            bad = await c.post(
                "/v1/admin/codes",
                headers=ADMIN_AUTH,
                json={"codes": [{"code": "INVITE-2", "max_uses": 5, **spec}]},
            )
            assert_error(bad, "VALIDATION_ERROR", 400)
    assert audit(fresh)["usage"] == 0
