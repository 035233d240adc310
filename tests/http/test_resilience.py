"""The API when the database misbehaves: statement timeouts, a lost listener session, and
running as the least-privilege role instead of the superuser."""

from __future__ import annotations

import uuid

import httpx
import psycopg
import psycopg.conninfo
import pytest

from tests.support import (
    CLIENT_AUTH,
    assert_error,
    live_server,
    reset,
    settings_for,
    wait_for,
    walk_every_route,
)


def usage(conninfo: str, code: str) -> int:
    with psycopg.connect(conninfo) as conn:
        return conn.execute(
            "SELECT usage_count FROM capacity.codes WHERE code = %s", (code,)
        ).fetchone()[0]


@pytest.mark.parametrize("lock_mode", ["wait", "advisory"])
def test_a_statement_timeout_answers_503_and_changes_nothing(db, lock_mode):
    reset(db, [{"code": "SLOW", "max_uses": 5}])
    # lock_timeout 0 disables it, so the statement timeout is what ends the wait.
    settings = settings_for(db, statement_timeout_ms=300, lock_timeout_ms=0)
    with (
        live_server(settings) as base,
        httpx.Client(base_url=base, headers=CLIENT_AUTH, timeout=30) as http,
        psycopg.connect(db) as blocker,
    ):
        # Another session holds the code row lock every mode ends up waiting for.
        blocker.execute("SELECT 1 FROM capacity.codes WHERE code = 'SLOW' FOR UPDATE")
        r = http.post("/v1/codes/SLOW/claims", json={"holder": "h", "lock_mode": lock_mode})
        error = assert_error(r, "SERVICE_UNAVAILABLE", 503)
        assert error["sqlstate"] == "CP015" and r.headers["retry-after"]
        blocker.rollback()
        assert usage(db, "SLOW") == 0  # the timed-out claim left nothing behind
        assert http.post("/v1/codes/SLOW/claims", json={"holder": "h"}).status_code == 201


def test_the_listener_reconnects_after_losing_its_session(db):
    reset(db, [{"code": "LISTEN", "max_uses": 5}])
    settings = settings_for(db, cache_ttl_ms=600_000)  # only notifications can refresh the cache
    with (
        live_server(settings) as base,
        httpx.Client(base_url=base, headers=CLIENT_AUTH) as http,
        psycopg.connect(db, autocommit=True) as sql,
    ):
        assert http.get("/v1/codes/LISTEN").json()["usage_count"] == 0  # now cached
        killed = sql.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE application_name = 'pgcapacity-listener' AND datname = current_database()"
        ).fetchone()[0]
        assert killed == 1
        assert wait_for(lambda: http.get("/health/detailed").json()["listener"]["reconnects"] == 1)
        sql.execute("SELECT capacity.claim('LISTEN', 'after-reconnect')")
        assert wait_for(lambda: http.get("/v1/codes/LISTEN").json()["usage_count"] == 1)
        assert http.get("/health/detailed").json()["listener"]["connected"] is True


@pytest.fixture(scope="module")
def app_role(db: str) -> str:
    """A login role with only what capacity.grant_app_access() gives (sql/roles.sql)."""
    role = f"api_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(db, autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {role} LOGIN")
        conn.execute("SELECT capacity.grant_app_access(%s)", (role,))
    return psycopg.conninfo.make_conninfo(db, user=role)


def test_the_whole_api_runs_as_the_least_privilege_role(db, app_role):
    reset(db, [])
    walk_every_route(app_role)
    with psycopg.connect(app_role) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute("UPDATE capacity.codes SET usage_count = 0")  # really not a superuser


def _use_then_kill_every_connection(http: httpx.Client, conninfo: str) -> None:
    """Every pooled connection used (the pool hands them out in turn), then its backend killed."""
    for _ in range(8):
        assert http.get("/v1/codes/KILLED").status_code == 200
    with psycopg.connect(conninfo, autocommit=True) as sql:
        killed = sql.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE application_name = 'pgcapacity-api' AND datname = current_database()"
        ).fetchone()[0]
    assert killed == 4


# Background work would take pooled connections too: keep it out of the way.
QUIET = {"cache_ttl_ms": 0, "change_feed_ms": 600_000, "dashboard_refresh_ms": 600_000}


def test_a_killed_pool_fails_one_request_then_checks_the_rest(db):
    reset(db, [{"code": "KILLED", "max_uses": 5}])
    settings = settings_for(db, pool_min=4, pool_check_idle_ms=600_000, **QUIET)
    with live_server(settings) as base, httpx.Client(base_url=base, timeout=30) as http:
        _use_then_kill_every_connection(http, db)
        # Recently used, so not checked: the first request finds its connection dead...
        assert_error(http.get("/v1/codes/KILLED"), "SERVICE_UNAVAILABLE", 503)
        # ...and the pool checks every connection returned before that, and replaces them.
        for _ in range(4):
            assert http.get("/v1/codes/KILLED").status_code == 200


def test_with_check_idle_ms_0_every_connection_is_checked_before_use(db):
    reset(db, [{"code": "KILLED", "max_uses": 5}])
    settings = settings_for(db, pool_min=4, pool_check_idle_ms=0, **QUIET)
    with live_server(settings) as base, httpx.Client(base_url=base, timeout=30) as http:
        _use_then_kill_every_connection(http, db)
        for _ in range(4):
            assert http.get("/v1/codes/KILLED").status_code == 200
