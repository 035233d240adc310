"""`pgcapacity serve --embedded DIR --migrate --demo-token`, what `make run` runs, as a real
process: it starts the embedded PostgreSQL, serves claims on it, keeps the data between
runs, and stops that server however it is told to stop (Ctrl-C, `kill`, a closed
terminal), leaving no PostgreSQL behind. The tests run in order on one data directory:
a first run, then restarts on its data."""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from pgcapacity import __version__, pgserver
from tests.support import wait_for

STARTUP_SECONDS = 180  # the first start runs initdb on a loaded 2-core machine


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    """Named as make run names it, so that the CLI run beside it finds it."""
    path = tmp_path_factory.mktemp("checkout") / ".pgdata"
    path.mkdir()
    return path


def _postmaster_pid_file(data_dir: Path) -> Path:
    return data_dir / "embedded" / "postmaster.pid"


def _env(**settings: str) -> dict[str, str]:
    """This environment without a database or pgcapacity settings, plus `settings`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "PGCAP"))}
    return env | settings


def _serve_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "pgcapacity.cli", "serve", *args]


def _serve_to_the_end(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        _serve_command(*args), env=env, capture_output=True, text=True, timeout=60
    )


@contextlib.contextmanager
def _serve(data_dir: Path) -> Iterator[tuple[subprocess.Popen, str]]:
    """The serve process (stdout and stderr in data_dir/serve.log) and its URL once live."""
    port = pgserver.free_port()
    command = _serve_command("--embedded", str(data_dir), "--migrate", "--demo-token")
    with (data_dir / "serve.log").open("a") as log:
        env = _env(PGCAPACITY_PORT=str(port))
        process = subprocess.Popen(command, env=env, stdout=log, stderr=log)
    base = f"http://127.0.0.1:{port}"

    def live() -> bool:
        if process.poll() is not None:
            return True  # it died: no use waiting
        try:
            return httpx.get(f"{base}/health/live", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_for(live, timeout=STARTUP_SECONDS)
        assert process.poll() is None, (data_dir / "serve.log").read_text()[-3000:]
        yield process, base
    finally:
        if process.poll() is None:
            process.kill()  # a failed test: do not leave it serving
            process.wait(30)


def _stop(process: subprocess.Popen, sig: signal.Signals) -> int:
    process.send_signal(sig)
    return process.wait(60)


def _auth(data_dir: Path) -> dict[str, str]:
    token = (data_dir / "admin-token").read_text().strip()
    return {"Authorization": f"Bearer {token}"}


def test_serve_claims_on_the_embedded_server_and_sigterm_stops_it(data_dir):
    with _serve(data_dir) as (process, base):
        assert _postmaster_pid_file(data_dir).exists()
        codes = {"codes": [{"code": "RUN-1", "max_uses": 2}]}
        created = httpx.post(f"{base}/v1/admin/codes", json=codes, headers=_auth(data_dir))
        assert created.status_code == 200, created.text
        claim = httpx.post(
            f"{base}/v1/codes/RUN-1/claims", json={"holder": "alice"}, headers=_auth(data_dir)
        )
        assert claim.status_code == 201, claim.text
        assert claim.json()["usage_count"] == 1
        # A process manager's stop: uvicorn would re-raise SIGTERM with its default
        # (fatal) handler and skip stopping the embedded server.
        assert _stop(process, signal.SIGTERM) == 128 + signal.SIGTERM
    assert not _postmaster_pid_file(data_dir).exists(), "the embedded PostgreSQL still runs"
    log = (data_dir / "serve.log").read_text()
    # A quiet start and stop: no traceback, no warning, not the wheel's pg_ctl chatter.
    assert "Traceback" not in log and "Warning:" not in log and "pg_ctl" not in log, log


@pytest.mark.parametrize(
    ("sig", "status"),
    # Ctrl-C: uvicorn ends its run normally; a hangup is made a SIGTERM
    [(signal.SIGINT, 0), (signal.SIGHUP, 128 + signal.SIGTERM)],
    ids=["ctrl-c", "hangup"],
)
def test_a_restart_keeps_the_data_and_every_stop_signal_stops_the_server(data_dir, sig, status):
    with _serve(data_dir) as (process, base):
        code = httpx.get(f"{base}/v1/codes/RUN-1")
        assert code.status_code == 200, code.text
        assert (code.json()["found"], code.json()["usage_count"]) == (True, 1)
        assert _stop(process, sig) == status
    assert not _postmaster_pid_file(data_dir).exists(), "the embedded PostgreSQL still runs"


def _cli(data_dir: Path, *args: str) -> subprocess.CompletedProcess:
    """The CLI run from the checkout that holds data_dir, with no DATABASE_URL."""
    return subprocess.run(
        [sys.executable, "-m", "pgcapacity.cli", *args],
        cwd=data_dir.parent,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_printed_psql_command_and_the_cli_reach_make_runs_database(data_dir):
    with _serve(data_dir) as (process, _):
        banner = (data_dir / "serve.log").read_text().splitlines()
        at = max(i for i, line in enumerate(banner) if line.strip().startswith("psql:"))
        command = shlex.split(banner[at + 1])  # the line under "psql: make psql, or"
        query = ["-XAtc", "SELECT capacity.version()"]
        printed = subprocess.run(command + query, capture_output=True, text=True, timeout=60)
        assert (printed.returncode, printed.stdout.strip()) == (0, __version__), printed.stderr
        status = _cli(data_dir, "status")
        assert status.returncode == 0 and "up to date" in status.stdout, status.stderr
        assert "make run's database" in status.stderr
        psql = _cli(data_dir, "psql", "-XAtc", "SELECT usage_count FROM capacity.codes")
        assert (psql.returncode, psql.stdout.strip()) == (0, "1"), psql.stderr
        assert _stop(process, signal.SIGTERM) == 128 + signal.SIGTERM
    log = (data_dir / "serve.log").read_text()
    assert log.rstrip().endswith("stopped"), log[-500:]
    assert not _postmaster_pid_file(data_dir).exists(), "the embedded PostgreSQL still runs"


def test_the_cli_starts_make_runs_stopped_database_for_its_command_only(data_dir):
    assert not _postmaster_pid_file(data_dir).exists()
    status = _cli(data_dir, "status")
    assert status.returncode == 0 and "up to date" in status.stdout, status.stderr
    assert not _postmaster_pid_file(data_dir).exists(), "the CLI left its server running"


def test_without_database_url_or_make_run_database_the_cli_says_so(tmp_path):
    done = _cli(tmp_path / ".pgdata", "status")
    assert done.returncode == 1
    assert "DATABASE_URL is not set" in done.stderr and "make run" in done.stderr


def test_a_run_killed_outright_does_not_keep_the_next_ones_from_stopping_the_server(data_dir):
    """SIGKILL leaves the server running and the killed process counted among its users
    (the wheel's .handle_pids.json); the next run must still stop the server at its end."""
    with _serve(data_dir) as (process, _):
        process.kill()
        process.wait(30)
    users = json.loads((data_dir / "embedded" / ".handle_pids.json").read_text())
    assert process.pid in users  # the dead process is still counted: the case under test
    assert _postmaster_pid_file(data_dir).exists()  # and its server outlived it
    with _serve(data_dir) as (process, base):
        assert httpx.get(f"{base}/v1/codes/RUN-1").json()["usage_count"] == 1
        assert _stop(process, signal.SIGTERM) == 128 + signal.SIGTERM
    assert not _postmaster_pid_file(data_dir).exists(), "the embedded PostgreSQL still runs"


def test_an_unreachable_database_ends_serve_with_one_clear_line(tmp_path):
    nothing_there = pgserver.free_port()
    env = _env(
        DATABASE_URL=f"postgresql://nobody@127.0.0.1:{nothing_there}/x",
        PGCAPACITY_PORT=str(pgserver.free_port()),
    )
    done = _serve_to_the_end(env)
    assert done.returncode == 1
    assert done.stderr.startswith("pgcapacity serve: connection failed:"), done.stderr
    assert "Traceback" not in done.stderr + done.stdout


def test_a_port_in_use_is_refused_before_the_embedded_server_starts(tmp_path):
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        done = _serve_to_the_end(_env(PGCAPACITY_PORT=str(port)), "--embedded", str(tmp_path))
    assert done.returncode == 1, done.stderr
    assert done.stderr == f"pgcapacity serve: 127.0.0.1:{port} is already in use\n"
    assert not (tmp_path / "embedded").exists()  # no initdb, no server started


def test_a_bad_setting_is_refused_before_the_embedded_server_starts(tmp_path):
    done = _serve_to_the_end(_env(PGCAPACITY_POOL_MIN="many"), "--embedded", str(tmp_path))
    assert done.returncode == 2, done.stderr
    assert done.stderr == "pgcapacity serve: PGCAPACITY_POOL_MIN='many': expected an integer\n"
    assert not (tmp_path / "embedded").exists()
