"""The routes the web dashboard reads, through the real app: activity over time from the
event log, this process's latency and refusals per minute, what a token may do; and the
page itself with its assets and security headers."""

from __future__ import annotations

from datetime import datetime

import pytest

from tests.support import (
    ADMIN,
    ADMIN_AUTH,
    CLIENT_AUTH,
    api_client,
    assert_error,
    reset,
    settings_for,
)

pytestmark = pytest.mark.anyio


@pytest.fixture
def codes(db):
    reset(
        db,
        [
            {"code": "ACT-1", "max_uses": 1, "pool": "act"},
            {"code": "ACT-2", "max_uses": 3, "pool": "act"},
            {"code": "OTHER-1", "max_uses": 3, "pool": "other"},
        ],
    )
    return db


async def claim(c, code: str, holder: str):
    return await c.post(f"/v1/codes/{code}/claims", json={"holder": holder}, headers=CLIENT_AUTH)


def totals(activity: dict) -> dict:
    kinds = ("claimed", "released", "expired", "revoked")
    return {k: sum(b[k] for b in activity["buckets"]) for k in kinds} | {
        "units_now": activity["buckets"][-1]["units_in_use"]
    }


async def test_activity_of_every_code_a_pool_and_one_code(codes):
    async with api_client(settings_for(codes)) as c:
        first = await claim(c, "ACT-2", "ann")
        await claim(c, "ACT-2", "bob")
        await claim(c, "OTHER-1", "cy")
        await c.delete(
            f"/v1/claims/{first.json()['claim_id']}",
            headers={"X-Claim-Token": first.json()["token"], **CLIENT_AUTH},
        )
        await c.post("/v1/admin/codes/OTHER-1/revoke", headers=ADMIN_AUTH)

        every = (await c.get("/v1/activity", headers=CLIENT_AUTH)).json()
        assert (every["window"], every["bucket_seconds"], len(every["buckets"])) == ("1h", 60, 60)
        starts = [datetime.fromisoformat(b["bucket_start"]) for b in every["buckets"]]
        assert starts == sorted(starts) and all(s.second == 0 for s in starts)
        assert totals(every) == {
            "claimed": 3,
            "released": 1,
            "expired": 0,
            "revoked": 1,
            "units_now": 1,
        }
        pool = (await c.get("/v1/activity?pool=act", headers=CLIENT_AUTH)).json()
        assert totals(pool) == {
            "claimed": 2,
            "released": 1,
            "expired": 0,
            "revoked": 0,
            "units_now": 1,
        }
        # Codes are matched as the claim route matches them (trimmed, case-folded).
        one = (await c.get("/v1/activity?code=%20act-2&window=1d", headers=CLIENT_AUTH)).json()
        assert (one["code"], one["bucket_seconds"], len(one["buckets"])) == ("ACT-2", 600, 144)
        assert totals(one)["claimed"] == 2


async def test_kept_series_take_in_new_events(codes):
    """A series read again within a second is shared; after that, its newest buckets are
    read again and merged, so a new claim shows."""
    async with api_client(settings_for(codes)) as c:
        await claim(c, "ACT-2", "ann")
        before = totals((await c.get("/v1/activity?code=ACT-2", headers=CLIENT_AUTH)).json())
        await claim(c, "ACT-2", "bob")
        series = c.app.state.activity
        for kept in series._series.values():  # as if read more than a second ago
            kept.read_at -= 2
        after = totals((await c.get("/v1/activity?code=ACT-2", headers=CLIENT_AUTH)).json())
        assert (before["claimed"], after["claimed"]) == (1, 2)
        assert after["units_now"] == 2


async def test_activity_refuses_bad_input_clearly(codes):
    async with api_client(settings_for(codes)) as c:
        assert_error(await c.get("/v1/activity"), "UNAUTHORIZED", 401)
        bad = assert_error(
            await c.get("/v1/activity?window=1w", headers=CLIENT_AUTH), "VALIDATION_ERROR", 400
        )
        assert "window" in str(bad)
        assert_error(
            await c.get("/v1/activity?code=NOPE", headers=CLIENT_AUTH), "CODE_NOT_FOUND", 404
        )


async def test_performance_history_has_latency_and_refusals_per_minute(codes):
    async with api_client(settings_for(codes)) as c:
        assert (await claim(c, "ACT-1", "ann")).status_code == 201
        assert_error(await claim(c, "ACT-1", "bob"), "CODE_FULL", 409)
        assert_error(await claim(c, "NOPE", "cy"), "CODE_NOT_FOUND", 404)
        history = (await c.get("/v1/performance/history")).json()
        assert history["step_seconds"] == 60
        points = history["operations"]["claimCode"]
        assert sum(p["requests"] for p in points) == 3
        assert all(p["error_rate"] == 0 for p in points)  # refusals are not failures
        assert all(p["p99_ms"] >= p["p50_ms"] > 0 for p in points)
        refused = {}
        for p in points:
            for name, n in p["refusals"].items():
                refused[name] = refused.get(name, 0) + n
        assert refused == {"CODE_FULL": 1, "CODE_NOT_FOUND": 1}
        by_pool = {
            (r["error"], r["pool"]): r["count"]
            for r in history["refusals"]
            if r["operation"] == "claimCode"
        }
        assert by_pool == {("CODE_FULL", "act"): 1, ("CODE_NOT_FOUND", None): 1}


async def test_whoami_says_what_a_token_may_do(codes):
    async with api_client(settings_for(codes)) as c:
        assert (await c.get("/v1/whoami", headers=ADMIN_AUTH)).json() == {
            "role": "admin",
            "can_write": True,
            "can_admin": True,
        }
        assert (await c.get("/v1/whoami", headers=CLIENT_AUTH)).json() == {
            "role": "client",
            "can_write": True,
            "can_admin": False,
        }
        assert (await c.get("/v1/whoami")).json() == {
            "role": "anonymous",
            "can_write": False,
            "can_admin": False,
        }
        wrong = {"Authorization": "Bearer not-a-token"}
        assert_error(await c.get("/v1/whoami", headers=wrong), "UNAUTHORIZED", 401)


async def test_the_page_and_its_assets_are_served_with_a_strict_policy(codes):
    async with api_client(settings_for(codes)) as c:
        page = await c.get("/ui")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        policy = page.headers["content-security-policy"]
        assert "default-src 'none'" in policy and "frame-ancestors 'none'" in policy
        assert page.headers["cache-control"] == "no-store"
        assert ADMIN not in page.text and 'id="login-form"' in page.text
        for asset, kind in (
            ("app.js", "javascript"),
            ("app.css", "text/css"),
            ("chart.umd.min.js", "javascript"),
        ):
            served = await c.get(f"/ui/assets/{asset}")
            assert served.status_code == 200 and kind in served.headers["content-type"], asset
        assert_error(await c.get("/ui/assets/nothing.js"), "NOT_FOUND", 404)
