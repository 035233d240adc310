"""capacity.schedule_maintenance() on a server started with shared_preload_libraries =
'pg_cron': the jobs it schedules, their commands, re-running, unscheduling; and the clear
refusal where pg_cron is not installed."""

from __future__ import annotations

import os

import psycopg
import pytest

from pgcapacity import installer, pgserver

DATABASE = "pgcapacity_cron"
JOBS = {
    "pgcapacity-expire-idle": ("*/5 * * * *", "SELECT capacity.expire_idle_claims()"),
    "pgcapacity-refresh-dashboard": ("*/5 * * * *", "SELECT capacity.refresh_dashboard()"),
    "pgcapacity-prune-events": (
        "17 3 * * *",
        "SELECT capacity.prune_events('30 days'::interval)",
    ),
}


@pytest.fixture(scope="module")
def cron_db():
    if os.environ.get("PGCAPACITY_SERVER") == "embedded":
        pytest.skip("pg_cron needs the local PostgreSQL binaries (the wheel has no pg_cron)")
    if pgserver.find_bindir() is None:  # as for plpgsql_check: a missing install fails
        raise RuntimeError("pg_cron needs the local PostgreSQL server binaries: run `make setup`")
    server = pgserver.start_local(
        pgserver.find_bindir(),
        settings={"shared_preload_libraries": "pg_cron", "cron.database_name": DATABASE},
    )
    try:
        url = pgserver.ensure_database(server.conninfo, DATABASE)
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("CREATE EXTENSION pg_cron")
        installer.migrate(url)
        yield url
    finally:
        server.stop()


def jobs(conn: psycopg.Connection) -> dict[str, tuple[str, str]]:
    rows = conn.execute("SELECT jobname, schedule, command FROM cron.job ORDER BY jobname")
    return {name: (schedule, command) for name, schedule, command in rows}


def test_maintenance_jobs_are_scheduled_once_and_their_commands_run(cron_db):
    with psycopg.connect(cron_db, autocommit=True) as conn:
        scheduled = conn.execute(
            "SELECT job_name, schedule, command FROM capacity.schedule_maintenance('5 minutes', '30 days')"
        ).fetchall()
        assert {name: (s, c) for name, s, c in scheduled} == JOBS
        assert jobs(conn) == JOBS
        conn.execute("SELECT * FROM capacity.schedule_maintenance('5 minutes', '30 days')")
        assert jobs(conn) == JOBS, "re-running replaces the jobs"
        for _, command in JOBS.values():
            conn.execute(command)  # what pg_cron will run, as the scheduling role
        hourly = conn.execute(
            "SELECT schedule FROM capacity.schedule_maintenance('1 hour') WHERE job_name LIKE '%idle'"
        ).fetchone()
        assert hourly == ("0 * * * *",)
        removed = conn.execute("SELECT * FROM capacity.unschedule_maintenance()").fetchall()
        assert [r[0] for r in removed] == sorted(JOBS)
        assert jobs(conn) == {}


@pytest.mark.parametrize("every", ["7 minutes", "90 seconds", "0 minutes", "2 days"])
def test_a_period_cron_cannot_keep_is_refused(cron_db, every):
    with psycopg.connect(cron_db, autocommit=True) as conn:
        with pytest.raises(psycopg.Error) as refused:
            conn.execute("SELECT * FROM capacity.schedule_maintenance(%s::interval)", (every,))
        assert refused.value.sqlstate == "CP001" and refused.value.diag.message_hint
        assert jobs(conn) == {}


def test_without_pg_cron_it_says_what_to_do(conn):
    with pytest.raises(psycopg.Error) as refused:
        conn.execute("SELECT * FROM capacity.schedule_maintenance()")
    assert refused.value.sqlstate == "CP001"
    assert "pg_cron is not installed" in refused.value.diag.message_primary
    assert "shared_preload_libraries" in refused.value.diag.message_hint
    assert conn.execute("SELECT count(*) FROM capacity.unschedule_maintenance()").fetchone() == (0,)
