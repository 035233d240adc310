"""Least privilege through the proxy: an application role given access with the proxy's
grant_app_access runs every operation through it, reaches the shards as itself (so each
shard's own grants decide), and can change no placement, grant or table."""

from __future__ import annotations

import uuid

import psycopg
import pytest

from pgcapacity import cluster
from tests.support import reset, walk_every_route


@pytest.fixture(scope="module")
def app(sharded) -> str:
    """A login role (roles are the server's: the same on the proxy and the shards here),
    given access through the proxy."""
    role = f"app_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(sharded.proxy, autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {role} LOGIN")
        conn.execute("SELECT capacity.grant_app_access(%s)", (role,))
    return psycopg.conninfo.make_conninfo(sharded.proxy, user=role)


def test_app_role_runs_every_operation_through_the_proxy(sharded, app):
    reset(sharded.proxy, [{"code": "PRIV-A", "max_uses": 5}])
    with psycopg.connect(app, autocommit=True) as conn:
        # New codes in new pools: placement is recorded by the app role too.
        conn.execute(
            """SELECT capacity.upsert_codes('[{"code": "PRIV-B", "max_uses": 2, "pool": "priv-b"},
                                               {"code": "PRIV-C", "max_uses": 2, "pool": "priv-c"}]')"""
        )
        conn.execute("SELECT capacity.set_holder_limit('priv-b', 'alice', 2)")
        claims = [
            conn.execute(
                "SELECT claim_id, token FROM capacity.claim(%s, 'alice')", (code,)
            ).fetchone()
            for code in ("PRIV-A", "PRIV-B", "PRIV-C")
        ]
        assert conn.execute("SELECT current_user").fetchone()[0] == app.split("user=")[1].split()[0]
        for claim in claims:
            conn.execute("SELECT capacity.heartbeat(%s, %s)", claim)
            assert conn.execute("SELECT holder FROM capacity.get_claim(%s)", claim[:1]).fetchone()
        assert conn.execute("SELECT can_claim FROM capacity.check('PRIV-B')").fetchone() == (True,)
        used = conn.execute(
            "SELECT code, usage_count FROM capacity.usage_batch(ARRAY['PRIV-C', 'PRIV-A'])"
        ).fetchall()
        assert used == [("PRIV-C", 1), ("PRIV-A", 1)]
        assert conn.execute(
            "SELECT sum(usage_count) FROM capacity.code_usage WHERE code LIKE 'PRIV-%'"
        ).fetchone() == (3,)
        assert conn.execute("SELECT count(*) FROM capacity.holder_usage").fetchone()[0] >= 1
        listed = conn.execute("SELECT code FROM capacity.list_codes(search => 'priv')").fetchall()
        assert listed == [("PRIV-A",), ("PRIV-B",), ("PRIV-C",)]
        assert (
            len(conn.execute("SELECT * FROM capacity.list_claims(holder => 'alice')").fetchall())
            == 3
        )
        for claim in claims:
            released = conn.execute("SELECT released FROM capacity.release(%s, %s)", claim)
            assert released.fetchone() == (True,)
        conn.execute("SELECT * FROM capacity.expire_idle_claims()")
        assert conn.execute("SELECT count(*) FROM capacity.reconcile()").fetchone() == (0,)
        assert conn.execute("SELECT count(*) FROM capacity.error_codes()").fetchone() == (18,)
        assert conn.execute("SELECT capacity.version()").fetchone()[0]


def test_the_shards_see_the_app_role_not_the_owner(sharded, app):
    """PL/Proxy connects to a shard as the role calling the proxy: the shard's grants
    apply, and its sessions run as that role."""
    role = psycopg.conninfo.conninfo_to_dict(app)["user"]
    reset(sharded.proxy, [{"code": "PRIV-SEEN", "max_uses": 5}])
    shard = sharded.shards[cluster_shard_of(sharded.proxy, "PRIV-SEEN")]
    with psycopg.connect(app, autocommit=True) as conn:
        conn.execute("SELECT * FROM capacity.check('PRIV-SEEN')")  # opens the shard session
        with psycopg.connect(shard, autocommit=True) as owner:
            on_shard = owner.execute(
                "SELECT usename FROM pg_stat_activity WHERE datname = current_database()"
                " AND backend_type = 'client backend' AND pid <> pg_backend_pid()"
            ).fetchall()
            assert (role,) in on_shard
            owner.execute(f"REVOKE EXECUTE ON FUNCTION capacity.check(text) FROM {role}")
        try:
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute("SELECT * FROM capacity.check('PRIV-SEEN')")
        finally:
            with psycopg.connect(shard, autocommit=True) as owner:
                owner.execute("SELECT capacity.grant_app_access(%s)", (role,))
        assert conn.execute("SELECT can_claim FROM capacity.check('PRIV-SEEN')").fetchone()


def cluster_shard_of(proxy: str, code: str) -> int:
    with psycopg.connect(proxy) as conn:
        return conn.execute("SELECT capacity_cluster.shard_of_code(%s)", (code,)).fetchone()[0]


@pytest.mark.parametrize(
    "statement",
    [
        "DELETE FROM capacity_cluster.code_shards",
        "UPDATE capacity_cluster.pool_shards SET shard = 0",
        "INSERT INTO capacity_cluster.code_shards VALUES ('X', 0)",
        "SELECT * FROM capacity_cluster.app_roles",
        "SELECT capacity.grant_app_access(current_user)",
        "SELECT capacity_cluster.grant_on_proxy(current_user)",
        "SELECT * FROM capacity_cluster.grant_app_access(current_user)",
    ],
)
def test_app_role_cannot_change_placement_or_grants(app, statement):
    with (
        psycopg.connect(app, autocommit=True) as conn,
        pytest.raises(psycopg.errors.InsufficientPrivilege),
    ):
        conn.execute(statement)


def test_a_role_that_does_not_exist_is_a_validation_error(sharded):
    with (
        psycopg.connect(sharded.proxy, autocommit=True) as conn,
        pytest.raises(psycopg.Error) as raised,
    ):
        conn.execute("SELECT capacity.grant_app_access('no_such_role_here')")
    assert raised.value.sqlstate == "CP001"
    assert str(raised.value).startswith("VALIDATION_ERROR: role no_such_role_here does not exist")


def test_grants_survive_a_reinstall_and_the_cli_reaches_the_shards_as_the_role(sharded, app):
    cluster.install(sharded.proxy, sharded.shards)  # rebuilds the proxy's capacity schema
    role = psycopg.conninfo.conninfo_to_dict(app)["user"]
    urls = cluster.shard_urls(app)
    assert [psycopg.conninfo.conninfo_to_dict(u)["user"] for u in urls] == [role, role]
    with psycopg.connect(sharded.proxy) as conn:
        stored = conn.execute(cluster.SHARD_OPTIONS).fetchone()[0]
    assert not any("user=" in option for option in stored)  # each caller as itself
    reset(sharded.proxy, [{"code": "PRIV-AGAIN", "max_uses": 1}])
    with psycopg.connect(app, autocommit=True) as conn:
        assert conn.execute("SELECT holder FROM capacity.claim('PRIV-AGAIN', 'bob')").fetchone()


def test_the_whole_api_runs_as_the_app_role_through_the_proxy(sharded, app):
    reset(sharded.proxy, [])
    walk_every_route(app)
