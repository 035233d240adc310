"""SPEC §4: versioned, idempotent, concurrency-safe install by two equivalent paths."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import psycopg
import pytest

from api import __version__, installer
from tests.catalog import snapshot
from tests.concurrency import run_concurrently

REPO = Path(__file__).resolve().parent.parent


def psql(conninfo: str, *args: str, input: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", conninfo, *args],
        input=input,
        capture_output=True,
        text=True,
        check=False,
    )


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
