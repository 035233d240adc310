"""The `pgcapacity` maintenance commands as an operator or cron runs them: processes, a
real database, their output and exit status."""

from __future__ import annotations

import os
import subprocess
import sys

import psycopg
import pytest

from pgcapacity import cli


def pgcapacity(db: str, *args: str) -> subprocess.CompletedProcess:
    env = os.environ | {"DATABASE_URL": db}
    command = [sys.executable, "-m", "pgcapacity.cli", *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)


def test_status_expire_idle_and_refresh_on_an_installed_database(db):
    with psycopg.connect(db, autocommit=True) as conn:
        conn.execute("""SELECT capacity.upsert_codes('[{"code": "CLI-1", "max_uses": 2}]')""")
        conn.execute("SELECT capacity.claim('CLI-1', 'idle-holder')")
        conn.execute("UPDATE capacity.claims SET last_seen_at = now() - interval '2 hours'")
    status = pgcapacity(db, "status")
    assert status.returncode == 0 and status.stdout.endswith("up to date\n"), status
    expired = pgcapacity(db, "expire-idle", "--idle", "1 hour")
    assert (expired.returncode, expired.stdout) == (0, "expired 1 idle claim(s)\n"), expired
    refreshed = pgcapacity(db, "refresh", "--force")
    assert refreshed.returncode == 0 and refreshed.stdout.startswith("dashboard refreshed"), (
        refreshed
    )


def test_a_database_error_is_one_line_with_the_servers_words(db):
    done = pgcapacity(db, "expire-idle", "--idle", "banana")
    assert done.returncode == 1
    assert done.stderr == (
        'pgcapacity expire-idle: invalid input syntax for type interval: "banana"\n'
    ), done.stderr


def test_a_connection_failure_says_so(db):
    done = pgcapacity("postgresql://nobody@127.0.0.1:1/x", "status")
    assert done.returncode == 1
    assert done.stderr.startswith("pgcapacity status: connection failed:"), done.stderr


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["refresh", "--every", "-1"], "argument --every: -1: it must be at least 0"),
        (["expire-idle", "--every", "soon"], "argument --every: 'soon' is not a number"),
        (["expire-idle", "--batch-size", "0"], "argument --batch-size: 0: it must be at least 1"),
    ],
)
def test_a_bad_number_is_a_usage_error(args, says, capsys):
    with pytest.raises(SystemExit) as exited:
        cli.parser().parse_args(args)
    assert exited.value.code == 2
    assert says in capsys.readouterr().err


def test_bench_is_the_benchmark_packages_own_command(db):
    helped = pgcapacity(db, "bench", "--help")
    assert helped.returncode == 0 and helped.stdout.startswith("usage: pgcapacity bench"), helped
    assert "--workloads" in helped.stdout
    refused = pgcapacity(db, "bench", "--clients", "0")
    assert refused.returncode == 2 and "argument --clients" in refused.stderr, refused
    other = pgcapacity(db, "status", "--clients", "3")
    assert other.returncode == 2 and "unrecognized arguments: --clients 3" in other.stderr


def test_every_survives_a_lost_connection(db):
    """`expire-idle --every` keeps running when its session is killed: it says so on
    stderr, reconnects and goes on expiring."""
    env = os.environ | {"DATABASE_URL": db}
    command = [sys.executable, "-m", "pgcapacity.cli", "expire-idle", "--every", "0.1"]
    with subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as loop:
        try:
            assert loop.stdout.readline() == "expired 0 idle claim(s)\n"
            with psycopg.connect(db, autocommit=True) as conn:
                killed = 0
                while not killed:  # its session, once it has connected
                    killed = conn.execute("""
                        SELECT count(*) FROM (SELECT pg_terminate_backend(pid)
                          FROM pg_stat_activity
                         WHERE datname = current_database() AND pid <> pg_backend_pid()
                           AND application_name = '' AND backend_type = 'client backend') t
                    """).fetchone()[0]
                assert "reconnecting in 1 s" in loop.stderr.readline()
                conn.execute(
                    """SELECT capacity.upsert_codes('[{"code": "LOOP", "max_uses": 1}]')"""
                )
                conn.execute("SELECT capacity.claim('LOOP', 'gone')")
                conn.execute(
                    "UPDATE capacity.claims SET last_seen_at = now() - interval '2 hours'"
                    " WHERE released_at IS NULL"
                )
            lines = iter(loop.stdout.readline, "")
            assert any(line == "expired 1 idle claim(s)\n" for line in lines)
            assert loop.poll() is None, "the loop ended"
        finally:
            loop.kill()
