"""PGCAPACITY_READ_URL: status checks, batch usage and the dashboard are served by a
streaming standby while it is at most PGCAPACITY_MAX_REPLICA_LAG_MS behind; above that,
or when it fails, the primary serves them. Claims always go to the primary.

A standby's replay is paused (pg_wal_replay_pause()) to make it visibly stale: a read
that shows the old usage came from the standby, one that shows the new usage from the
primary."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator

import httpx
import psycopg
import pytest

from pgcapacity.settings import Settings, SettingsError
from tests.replication.conftest import Pair, replay_caught_up, replicated
from tests.support import ADMIN_AUTH, CLIENT_AUTH, live_server, settings_for, wait_for


@pytest.fixture(scope="module")
def pair() -> Iterator[Pair]:
    with replicated(synchronous=False) as pair:
        with psycopg.connect(pair.primary_url, autocommit=True) as conn:
            codes = [{"code": c, "max_uses": 10, "pool": "replicas"} for c in ("R1", "R2")]
            conn.execute("SELECT capacity.upsert_codes(%s::jsonb)", (json.dumps(codes),))
        assert wait_for(lambda: replay_caught_up(pair))
        yield pair


def replay(pair: Pair, paused: bool) -> None:
    with psycopg.connect(pair.standby_url, autocommit=True) as conn:
        conn.execute(f"SELECT pg_wal_replay_{'pause' if paused else 'resume'}()")


@contextlib.contextmanager
def replay_paused(pair: Pair) -> Iterator[None]:
    replay(pair, paused=True)
    try:
        yield
    finally:
        replay(pair, paused=False)


def read_settings(pair: Pair, max_lag_ms: int) -> Settings:
    # No cache: every read is a database read, so each one shows where it was served.
    return settings_for(
        pair.primary_url,
        read_urls=(pair.standby_url,),
        max_replica_lag_ms=max_lag_ms,
        cache_ttl_ms=0,
    )


def replicas(http: httpx.Client) -> dict:
    return http.get("/health/detailed").json()["read_replicas"]


def serving(http: httpx.Client) -> bool:
    return replicas(http)["servers"][0]["serving"]


def usage(http: httpx.Client, code: str) -> int:
    r = http.get(f"/v1/codes/{code}")
    assert r.status_code == 200, r.text
    return r.json()["usage_count"]


@pytest.fixture
def api(pair: Pair, request) -> Iterator[httpx.Client]:
    max_lag_ms = getattr(request, "param", 60_000)
    with (
        live_server(read_settings(pair, max_lag_ms)) as base,
        httpx.Client(base_url=base, headers=CLIENT_AUTH, timeout=30) as http,
    ):
        assert wait_for(lambda: serving(http)), replicas(http)
        yield http


def test_reads_come_from_the_standby_and_claims_go_to_the_primary(pair, api):
    before = usage(api, "R1")
    with replay_paused(pair):
        claim = api.post("/v1/codes/R1/claims", json={"holder": "reader-1"})
        assert claim.status_code == 201, claim.text  # a standby would refuse the write
        assert claim.json()["usage_count"] == before + 1
        # Within the lag allowed (60 s here) the paused standby still serves: the old usage.
        assert usage(api, "R1") == before
        usages = api.post("/v1/usage", json={"codes": ["R2", "R1"]}).json()["codes"]
        assert [(u["code"], u["usage_count"]) for u in usages] == [("R2", 0), ("R1", before)]
    assert wait_for(lambda: usage(api, "R1") == before + 1)
    assert replicas(api)["servers"][0]["lag_ms"] < 60_000


@pytest.mark.parametrize("api", [300], indirect=True)
def test_a_standby_further_behind_than_the_limit_hands_reads_to_the_primary(pair, api):
    with replay_paused(pair):
        claim = api.post("/v1/codes/R2/claims", json={"holder": "reader-2"})
        assert claim.status_code == 201, claim.text
        assert wait_for(lambda: not serving(api))
        report = api.get("/health/detailed").json()
        lag = report["read_replicas"]["servers"][0]["lag_ms"]
        assert lag > 300, report["read_replicas"]
        assert report["status"] == "degraded"
        assert any("not serving reads" in advice for advice in report["recommendations"])
        assert usage(api, "R2") == claim.json()["usage_count"]  # the primary's answer
    assert wait_for(lambda: serving(api)), replicas(api)


def test_a_standby_that_goes_away_costs_no_read(pair, api):
    expected = usage(api, "R1")
    dashboard = api.get("/v1/dashboard").json()
    assert [p["pool"] for p in dashboard["pools"]] == ["replicas"]
    pair.standby.stop()  # the module's last test: the standby does not come back
    # The reads right after it went, before the next measurement noticed: each one that
    # meets the dead standby is answered by the primary.
    for _ in range(5):
        assert usage(api, "R1") == expected
    assert api.post("/v1/usage", json={"codes": ["R1"]}).status_code == 200
    assert wait_for(lambda: replicas(api)["servers"][0]["error"] is not None)
    assert not serving(api)
    health = api.get("/health/detailed", headers=ADMIN_AUTH).json()
    assert health["status"] == "degraded", health


def test_read_urls_are_one_connection_string_or_several_urls():
    env = {"DATABASE_URL": "postgresql://primary/db"}
    one = Settings.from_env(env | {"PGCAPACITY_READ_URL": "host=r1 port=5433 dbname=db"})
    assert one.read_urls == ("host=r1 port=5433 dbname=db",)
    two = Settings.from_env(env | {"PGCAPACITY_READ_URL": " postgresql://r1/db  postgres://r2/db "})
    assert two.read_urls == ("postgresql://r1/db", "postgres://r2/db")
    assert Settings.from_env(env).read_urls == ()
    with pytest.raises(SettingsError, match="PGCAPACITY_READ_URL"):
        Settings.from_env(env | {"PGCAPACITY_READ_URL": "postgresql://r1/db host=r2"})
    with pytest.raises(SettingsError, match="PGCAPACITY_READ_URL"):
        Settings.from_env(env | {"PGCAPACITY_READ_URL": "not a conninfo"})
    with pytest.raises(SettingsError, match="PGCAPACITY_MAX_REPLICA_LAG_MS"):
        Settings.from_env(env | {"PGCAPACITY_MAX_REPLICA_LAG_MS": "-1"})
