"""Least privilege: the app role executes functions and reads views, nothing more."""

from __future__ import annotations

import uuid
from pathlib import Path

import psycopg
import pytest

from pgcapacity import installer
from tests.support import psql


@pytest.fixture(scope="module")
def app(db: str) -> str:
    """A login role granted application access with capacity.grant_app_access()."""
    role = f"app_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(db, autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {role} LOGIN")
        conn.execute("SELECT capacity.grant_app_access(%s)", (role,))
        conn.execute("""SELECT capacity.upsert_codes('[{"code": "PRIV", "max_uses": 5}]')""")
    return psycopg.conninfo.make_conninfo(db, user=role)


def test_app_role_runs_every_operation(app):
    with psycopg.connect(app, autocommit=True) as conn:
        claim = conn.execute(
            "SELECT claim_id, token FROM capacity.claim('PRIV', 'alice')"
        ).fetchone()
        conn.execute("SELECT capacity.heartbeat(%s, %s)", claim)
        assert conn.execute("SELECT can_claim FROM capacity.check('PRIV')").fetchone() == (True,)
        assert conn.execute(
            "SELECT count(*) FROM capacity.usage_batch(ARRAY['PRIV'])"
        ).fetchone() == (1,)
        assert conn.execute(
            "SELECT usage_count FROM capacity.code_usage WHERE code = 'PRIV'"
        ).fetchone() == (1,)
        assert conn.execute("SELECT count(*) FROM capacity.holder_usage").fetchone() == (1,)
        listed = conn.execute("SELECT code FROM capacity.list_codes(search => 'priv')").fetchall()
        assert listed == [("PRIV",)]
        assert conn.execute(
            "SELECT holder FROM capacity.list_claims(code => 'PRIV')"
        ).fetchall() == [("alice",)]
        assert conn.execute("SELECT holder FROM capacity.get_claim(%s)", claim[:1]).fetchone() == (
            "alice",
        )
        assert conn.execute("SELECT released FROM capacity.release(%s, %s)", claim).fetchone() == (
            True,
        )
        conn.execute("""SELECT capacity.upsert_codes('[{"code": "PRIV2", "max_uses": 1}]')""")
        conn.execute("SELECT capacity.set_holder_limit('default', 'alice', 2)")
        conn.execute("SELECT * FROM capacity.expire_idle_claims()")
        assert conn.execute("SELECT count(*) FROM capacity.reconcile()").fetchone() == (0,)
        assert conn.execute("SELECT count(*) FROM capacity.error_codes()").fetchone() == (18,)


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE capacity.codes SET usage_count = 0",
        "INSERT INTO capacity.codes (code, max_uses) VALUES ('X', 1)",
        "DELETE FROM capacity.claims",
        "UPDATE capacity.holders SET max_claims = NULL",
        "INSERT INTO capacity.events (kind, code_id, code, pool, usage_after) VALUES ('claimed', 1, 'X', 'p', 0)",
        "SELECT * FROM capacity.codes",
        "SELECT * FROM capacity.claims",
        "TRUNCATE capacity.events",
        "SELECT capacity._lock_code(1, 'wait')",
        "SELECT capacity._end_claim(NULL::capacity.claims, 'released')",
        "SELECT capacity.grant_app_access(current_user)",
        "SELECT capacity.schedule_maintenance()",
        "SELECT capacity.unschedule_maintenance()",
    ],
)
def test_app_role_cannot_touch_tables_or_private_functions(app, statement):
    with (
        psycopg.connect(app, autocommit=True) as conn,
        pytest.raises(psycopg.errors.InsufficientPrivilege),
    ):
        conn.execute(statement)


def test_grants_are_renewed_by_an_upgrade(app, db):
    """A re-install (upgrade) keeps the app role working, new functions included."""
    with psycopg.connect(db, autocommit=True) as conn:
        conn.execute("DROP FUNCTION capacity.version()")
        conn.execute("DELETE FROM capacity.migrations WHERE name = 'functions/version.sql'")
    installer.migrate(db)
    with psycopg.connect(app, autocommit=True) as conn:
        assert conn.execute("SELECT capacity.version()").fetchone()[0]


def test_roles_sql_documented_setup_works(db):
    """sql/roles.sql is the documented role setup a DBA runs with psql."""
    roles_sql = Path(installer.sql_dir(), "roles.sql")
    done = psql(db, "-v", "app_password=secret-for-test", "-f", str(roles_sql))
    assert done.returncode == 0, done.stderr
    with psycopg.connect(db, autocommit=True) as conn:
        conn.execute("SELECT capacity.grant_app_access('pgcapacity_app')")  # idempotent
    app = psycopg.conninfo.make_conninfo(db, user="pgcapacity_app", password="secret-for-test")
    with psycopg.connect(app, autocommit=True) as conn:
        assert conn.execute("SELECT count(*) FROM capacity.error_codes()").fetchone() == (18,)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("DELETE FROM capacity.codes")
