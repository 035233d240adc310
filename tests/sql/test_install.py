"""The install: versioned, idempotent, concurrency-safe install by two equivalent paths."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import psycopg
import pytest

from pgcapacity import __version__, installer
from tests.support import psql, run_concurrently, snapshot

REPO = Path(__file__).resolve().parents[2]


def test_migrate_and_psql_bundle_build_identical_catalogs(new_database):
    migrated, bundled = new_database(empty=True), new_database(empty=True)
    installer.migrate(migrated)
    done = psql(bundled, "-f", "-", input=installer.bundle())
    assert done.returncode == 0, done.stderr
    a, b = snapshot(migrated), snapshot(bundled)
    assert a["functions"], "the snapshot must see the installed functions"
    for part in a:
        assert a[part] == b[part], f"{part} differ between migrate and psql -f"


def test_installing_twice_changes_nothing(new_database):
    db = new_database(empty=True)
    first = installer.migrate(db)
    before = snapshot(db)
    second = installer.migrate(db)
    assert {outcome for _, outcome in first} == {"applied"}
    assert {outcome for _, outcome in second} == {"unchanged"}
    assert len(second) == len(installer.steps())
    after = snapshot(db)
    before.pop("migrations"), after.pop("migrations")  # applied_at is not compared anyway
    assert before == after


def test_concurrent_installers_both_succeed_with_one_result(new_database):
    db, reference = new_database(empty=True), new_database(empty=True)
    installer.migrate(reference)
    # run_concurrently re-raises the first installer error, so all four must succeed.
    results = run_concurrently(db, 4, lambda _i, _conn: installer.migrate(db))
    applied = [outcome for run in results for _, outcome in run if outcome == "applied"]
    assert len(applied) == len(installer.steps()), "every step applied exactly once in total"
    assert snapshot(db)["functions"] == snapshot(reference)["functions"]


def test_changed_function_file_is_reapplied(new_database, tmp_path):
    db = new_database(empty=True)
    root = tmp_path / "sql"
    shutil.copytree(installer.sql_dir(), root)
    installer.migrate(db)
    version_file = root / "functions" / "version.sql"
    version_file.write_text(version_file.read_text().replace(f"'{__version__}'", "'9.9.9'"))
    outcomes = [r for r in installer.migrate(db, root) if r[1] != "unchanged"]
    assert outcomes == [("functions/version.sql", "reapplied")]
    with psycopg.connect(db) as conn:
        assert conn.execute("SELECT capacity.version()").fetchone()[0] == "9.9.9"


def test_edited_migration_is_refused_and_nothing_changes(new_database, tmp_path):
    db = new_database(empty=True)
    installer.migrate(db)
    root = tmp_path / "sql"
    shutil.copytree(installer.sql_dir(), root)
    migration = root / "migrations" / "0001_schema.sql"
    migration.write_text(migration.read_text() + "\n-- an edit after release\n")
    (root / "functions" / "version.sql").write_text(
        "CREATE OR REPLACE FUNCTION capacity.version() RETURNS text LANGUAGE sql AS $$ SELECT 'x' $$;"
    )
    with pytest.raises(
        psycopg.errors.ObjectNotInPrerequisiteState, match="was edited after it was applied"
    ):
        installer.migrate(db, root)
    with psycopg.connect(db) as conn:
        assert conn.execute("SELECT capacity.version()").fetchone()[0] == __version__


def test_a_comment_only_edit_of_an_applied_migration_is_recorded_not_refused(
    new_database, tmp_path
):
    """A database installed while 0001's comment read otherwise (an earlier checksum the
    installer lists) upgrades: the new checksum is recorded and nothing runs again. A
    function file no longer shipped is forgotten. Any other edit is still refused."""
    db = new_database(empty=True)
    root = tmp_path / "sql"
    shutil.copytree(installer.sql_dir(), root)
    migration = root / "migrations" / "0001_schema.sql"
    current = migration.read_text()
    earlier = current.replace(
        '(docs/architecture.md, "Lock order")', "(SPEC \N{SECTION SIGN}3, guarantee 3)"
    )
    assert earlier != current
    migration.write_text(earlier)
    assert (
        installer.Step("migrations/0001_schema.sql", "migration", earlier).checksum
        in (installer.EARLIER_CHECKSUMS["migrations/0001_schema.sql"])
    )
    (root / "functions" / "_retired.sql").write_text("SELECT 1;")
    installer.migrate(db, root)
    upgraded = [r for r in installer.migrate(db) if r[1] != "unchanged"]
    assert ("migrations/0001_schema.sql", "reworded") in upgraded
    assert not [r for r in upgraded if r[0].startswith("migrations/") and r[1] != "reworded"]
    assert installer.status(db).up_to_date
    with psycopg.connect(db) as conn:
        names = [r[0] for r in conn.execute("SELECT name FROM capacity.migrations")]
    assert "functions/_retired.sql" not in names
    assert all(outcome == "unchanged" for _, outcome in installer.migrate(db))


def test_database_newer_than_package_is_refused(new_database):
    db = new_database(empty=True)
    installer.migrate(db)
    with psycopg.connect(db, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO capacity.migrations (name, kind, checksum, package_version)"
            " VALUES ('migrations/9999_future.sql', 'migration', 'x', '99.0')"
        )
    with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState, match="9999_future"):
        installer.migrate(db)
    assert installer.status(db).unknown == ["migrations/9999_future.sql"]


def test_badly_named_migrations_are_refused(tmp_path):
    root = tmp_path / "sql"
    shutil.copytree(installer.sql_dir(), root)
    (root / "migrations" / "2_oops.sql").write_text("SELECT 1;")
    with pytest.raises(ValueError, match=r"badly named migration 2_oops\.sql"):
        installer.steps(root)
    (root / "migrations" / "2_oops.sql").unlink()
    (root / "migrations" / "0001_duplicate.sql").write_text("SELECT 1;")
    with pytest.raises(ValueError, match="share a number"):
        installer.steps(root)


def test_status_reports_pending_then_up_to_date(new_database):
    db = new_database(empty=True)
    st = installer.status(db)
    assert st.installed_version is None and not st.up_to_date
    assert len(st.pending) == len(installer.steps())
    installer.migrate(db)
    st = installer.status(db)
    assert st.up_to_date and st.installed_version == __version__ == st.package_version


def test_sql_version_matches_python_package(conn):
    assert conn.execute("SELECT capacity.version()").fetchone()[0] == __version__


@pytest.mark.skipif(shutil.which("pg_prove") is None, reason="pg_prove is installed by make setup")
def test_dba_path_psql_install_then_pg_prove(new_database):
    """The acceptance path for DBAs: `pgcapacity sql | psql -f`, then pg_prove."""
    db = new_database(empty=True)
    install_sql = subprocess.run(
        [str(Path(shutil.which("pgcapacity") or REPO / ".venv/bin/pgcapacity")), "sql"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert psql(db, "-f", "-", input=install_sql).returncode == 0
    assert psql(db, "-c", "CREATE EXTENSION pgtap").returncode == 0
    params = psycopg.conninfo.conninfo_to_dict(db)
    env = {"PATH": "/usr/bin:/bin"} | {
        f"PG{key.upper()}": str(params[key])
        for key in ("host", "port", "user", "dbname")
        if key in params
    }
    env["PGDATABASE"] = env.pop("PGDBNAME")
    tests = sorted(str(p) for p in (REPO / "sql" / "tests").glob("test_*.sql"))
    done = subprocess.run(
        ["pg_prove", *tests], capture_output=True, text=True, env=env, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "All tests successful." in done.stdout


def schema_before(new_database, tmp_path, migration: str) -> str:
    """A new database with the migrations numbered below `migration` applied: the schema
    alone, plus what every install ends with (re-granting app roles)."""
    db = new_database(empty=True)
    old = tmp_path / "sql"
    (old / "functions").mkdir(parents=True)
    (old / "views").mkdir()
    (old / "migrations").mkdir()
    for path in sorted((installer.sql_dir() / "migrations").glob("*.sql")):
        if path.name < migration:
            shutil.copy(path, old / "migrations" / path.name)
    shutil.copy(installer.sql_dir() / "functions" / "grant_app_access.sql", old / "functions")
    installer.migrate(db, old)
    return db


def test_upgrade_to_0008_counts_the_last_hour_from_the_events_once(new_database, tmp_path):
    """A database at migration 0007 with an hour of history, upgraded: the dashboard's last
    hour is seeded from the events (older ones and other kinds left out), and the change
    marks written before the upgrade (which count nothing) add nothing."""
    db = schema_before(new_database, tmp_path, "0008")
    with psycopg.connect(db, autocommit=True) as conn:
        conn.execute("""
            INSERT INTO capacity.codes (code, pool, max_uses) VALUES ('UP-1', 'up', 10), ('UP-2', 'up2', 10);
            INSERT INTO capacity.events (occurred_at, kind, code_id, code, pool, holder, usage_after)
            SELECT now() - e.age, e.kind::capacity.event_kind, c.code_id, c.code, c.pool, 'h', 1
              FROM (VALUES ('UP-1', 'claimed', interval '5 minutes'), ('UP-1', 'claimed', '50 minutes'),
                           ('UP-1', 'released', '4 minutes'), ('UP-1', 'expired', '3 minutes'),
                           ('UP-1', 'claimed', '2 hours'), ('UP-2', 'claimed', '1 minute'))
                   AS e(code, kind, age)
              JOIN capacity.codes AS c USING (code);
            INSERT INTO capacity.pending_changes (codes) VALUES ('{UP-1}'), ('{UP-2}');
        """)
    upgraded = {step: outcome for step, outcome in installer.migrate(db)}
    assert upgraded["migrations/0008_dashboard_activity_counters.sql"] == "applied"
    with psycopg.connect(db, autocommit=True) as conn:
        conn.execute("SELECT capacity.refresh_dashboard(true)")
        assert conn.execute(
            "SELECT pool, claims_last_hour, expiries_last_hour FROM capacity.dashboard ORDER BY pool"
        ).fetchall() == [("up", 2, 1), ("up2", 1, 0)]


def test_upgrade_to_0009_keeps_the_dashboards_rows_and_its_readers(new_database, tmp_path):
    """The materialized view becomes a view of the rows refresh_dashboard() writes: the
    rows refreshed before the upgrade are shown until the next refresh, an application
    role reads it as before, and the next refresh replaces them."""
    db = schema_before(new_database, tmp_path, "0009")
    with psycopg.connect(db, autocommit=True) as conn:
        conn.execute("""
            INSERT INTO capacity.codes (code, pool, max_uses, usage_count)
            VALUES ('UP-1', 'up', 10, 3), ('UP-2', 'up', 4, 4);
            REFRESH MATERIALIZED VIEW capacity.dashboard;
            UPDATE capacity.codes SET usage_count = 1 WHERE code = 'UP-1';
            DROP ROLE IF EXISTS pgcapacity_up_reader;
            CREATE ROLE pgcapacity_up_reader;
            SELECT capacity.grant_app_access('pgcapacity_up_reader');
        """)
    upgraded = {step: outcome for step, outcome in installer.migrate(db)}
    assert upgraded["migrations/0009_dashboard_table.sql"] == "applied"
    row = "SELECT pool, codes, full_codes, units_used, units_total FROM capacity.dashboard"
    with psycopg.connect(db, autocommit=True) as conn:
        kind = conn.execute(
            "SELECT relkind FROM pg_class WHERE oid = 'capacity.dashboard'::regclass"
        )
        assert kind.fetchone() == ("v",)
        with conn.transaction(force_rollback=True):
            conn.execute("SET LOCAL ROLE pgcapacity_up_reader")
            assert conn.execute(row).fetchall() == [("up", 2, 1, 7, 14)]  # as refreshed before
        conn.execute("SELECT capacity.refresh_dashboard(true)")
        assert conn.execute(row).fetchall() == [("up", 2, 1, 5, 14)]
        conn.execute("DROP OWNED BY pgcapacity_up_reader; DROP ROLE pgcapacity_up_reader")


def test_upgrade_to_longer_results_keeps_the_application_roles_grants(new_database, tmp_path):
    """error_codes() gains `hint` (0010) and revoke_code() `claims_ended` (0011): a
    function's result can only grow by dropping it, and an application role granted the
    old ones may call the new ones after the upgrade."""
    db = schema_before(new_database, tmp_path, "0010")
    with psycopg.connect(db, autocommit=True) as conn:
        conn.execute("""
            CREATE FUNCTION capacity.error_codes()
            RETURNS TABLE (name text, sqlstate text, http_status integer, description text,
                           aliases text[])
            LANGUAGE sql AS $$ VALUES ('CODE_FULL', 'CP005', 409, 'full', '{}'::text[]) $$;
            CREATE FUNCTION capacity.revoke_code(code text) RETURNS TABLE (revoked integer)
            LANGUAGE sql AS $$ VALUES (0) $$;
            DROP ROLE IF EXISTS pgcapacity_up_app;
            CREATE ROLE pgcapacity_up_app;
            SELECT capacity.grant_app_access('pgcapacity_up_app');
        """)
    upgraded = dict(installer.migrate(db))
    assert upgraded["migrations/0010_error_hints.sql"] == "applied"
    assert upgraded["migrations/0011_revoke_code_result.sql"] == "applied"
    with psycopg.connect(db, autocommit=True) as conn:
        conn.execute("""SELECT capacity.upsert_codes('[{"code": "UP-R", "max_uses": 1}]')""")
        with conn.transaction(force_rollback=True):
            conn.execute("SET LOCAL ROLE pgcapacity_up_app")
            hint = "SELECT hint FROM capacity.error_codes() WHERE name = 'CODE_FULL'"
            assert conn.execute(hint).fetchone() == ("Retry after a claim is released or expired.",)
            revoked = "SELECT revoked, claims_ended FROM capacity.revoke_code('UP-R')"
            assert conn.execute(revoked).fetchone() == (0, 0)
        conn.execute("DROP OWNED BY pgcapacity_up_app; DROP ROLE pgcapacity_up_app")


def test_upgrade_to_multi_unit_claims_keeps_claims_and_callers(new_database, tmp_path):
    """claim() gains `units` (0013): claims made before count one unit each, and an
    application role granted the three-argument claim() still calls it that way."""
    db = schema_before(new_database, tmp_path, "0013")
    with psycopg.connect(db, autocommit=True) as conn:
        conn.execute("""
            INSERT INTO capacity.codes (code, pool, max_uses, usage_count) VALUES ('UP-U', 'up', 3, 1);
            INSERT INTO capacity.claims (code_id, pool, holder)
            SELECT code_id, pool, 'before' FROM capacity.codes WHERE code = 'UP-U';
            CREATE FUNCTION capacity.claim(code text, holder text, lock_mode text DEFAULT 'advisory')
            RETURNS SETOF capacity.claim_result LANGUAGE sql AS $$ SELECT NULL::capacity.claim_result $$;
            DROP ROLE IF EXISTS pgcapacity_up_app;
            CREATE ROLE pgcapacity_up_app;
            SELECT capacity.grant_app_access('pgcapacity_up_app');
        """)
    upgraded = dict(installer.migrate(db))
    assert upgraded["migrations/0013_multi_unit_claims.sql"] == "applied"
    with psycopg.connect(db, autocommit=True) as conn:
        assert conn.execute("SELECT units FROM capacity.claims").fetchall() == [(1,)]
        with conn.transaction(force_rollback=True):
            conn.execute("SET LOCAL ROLE pgcapacity_up_app")
            claim = "SELECT units, usage_count FROM capacity.claim('UP-U', 'after', 'wait')"
            assert conn.execute(claim).fetchone() == (1, 2)
            assert conn.execute("SELECT count(*) FROM capacity.reconcile()").fetchone() == (0,)
        conn.execute("DROP OWNED BY pgcapacity_up_app; DROP ROLE pgcapacity_up_app")
