"""PGCAPACITY_PGBOUNCER=1 through a real PgBouncer in transaction mode (Debian `pgbouncer`)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from pgcapacity import pgserver
from tests.support import audit, http_workers, live_server, reset, settings_for

SERVER_POOL = 3  # PgBouncer's server connections for the database


def _pgbouncer_binary() -> str:
    found = shutil.which("pgbouncer") or (
        "/usr/sbin/pgbouncer" if Path("/usr/sbin/pgbouncer").exists() else None
    )
    assert found, "pgbouncer is not installed: run `make setup` (apt package pgbouncer)"
    return found


@contextlib.contextmanager
def pgbouncer(conninfo: str) -> Iterator[str]:
    """A transaction-mode PgBouncer in front of `conninfo`; yields its own conninfo."""
    target = conninfo_to_dict(conninfo)
    port = pgserver.free_port()
    workdir = Path(tempfile.mkdtemp(prefix="pgcapacity-pgbouncer-"))
    os.chmod(workdir, 0o777)
    user = target.get("user") or "postgres"
    backend = " ".join(
        f"{k}={v}" for k, v in target.items() if k in ("host", "port", "dbname", "user", "password")
    )
    (workdir / "userlist.txt").write_text(f'"{user}" ""\n')
    (workdir / "pgbouncer.ini").write_text(f"""
[databases]
pgc = {backend}
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {port}
unix_socket_dir =
auth_type = trust
auth_file = {workdir}/userlist.txt
pool_mode = transaction
default_pool_size = {SERVER_POOL}
max_client_conn = 500
ignore_startup_parameters = extra_float_digits
logfile = {workdir}/pgbouncer.log
""")
    cmd = [_pgbouncer_binary(), str(workdir / "pgbouncer.ini")]
    if os.geteuid() == 0:  # PgBouncer refuses to run as root
        cmd[1:1] = ["-u", pgserver.service_user()]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 20
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
                break
            if proc.poll() is not None or time.monotonic() > deadline:
                out = proc.stdout.read().decode() if proc.stdout else ""
                log = (
                    (workdir / "pgbouncer.log").read_text()
                    if (workdir / "pgbouncer.log").exists()
                    else ""
                )
                raise RuntimeError(f"pgbouncer did not start: {out}\n{log}")
            time.sleep(0.05)
        yield make_conninfo(host="127.0.0.1", port=port, dbname="pgc", user=user)
    finally:
        proc.terminate()
        proc.wait(10)
        shutil.rmtree(workdir, ignore_errors=True)


async def _traffic(base: str, attempts: int, clients: int) -> Counter:
    """Claims for distinct holders, each successful claim released again half the time."""

    async def claim_and_maybe_release(http, i, tally):
        r = await http.post("/v1/codes/BOUNCE/claims", json={"holder": f"h{i}"})
        tally[("claim", r.status_code)] += 1
        if r.status_code == 201 and i % 2:
            c = r.json()
            rel = await http.delete(
                f"/v1/claims/{c['claim_id']}", headers={"X-Claim-Token": c["token"]}
            )
            tally[("release", rel.status_code, rel.json()["released"])] += 1

    return await http_workers(base, attempts, clients, claim_and_maybe_release)


def test_api_behind_pgbouncer_transaction_mode(db):
    reset(db, [{"code": "BOUNCE", "max_uses": 150}])
    with pgbouncer(db) as bounced:
        settings = settings_for(bounced, pgbouncer=True, listen_url=db, pool_min=2, pool_max=10)
        with live_server(settings) as base:
            statuses = asyncio.run(_traffic(base, attempts=400, clients=24))
            with httpx.Client(base_url=base) as http:
                status = http.get("/v1/codes/BOUNCE").json()
                pool = http.get("/health/detailed").json()["pool"]
            with psycopg.connect(db) as conn:  # while the app still holds its pool open
                backends = conn.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = %s"
                    " AND pid <> pg_backend_pid() AND backend_type = 'client backend'",
                    (conninfo_to_dict(db)["dbname"],),
                ).fetchone()[0]
    released = statuses[("release", 200, True)]
    claimed = statuses[("claim", 201)]
    # Every unit taken is either still held or was given back; nothing else was answered.
    assert set(statuses) <= {("claim", 201), ("claim", 409), ("release", 200, True)}, statuses
    assert claimed - released == status["usage_count"] == audit(db)["usage"]
    assert 0 < status["usage_count"] <= 150 and released > 0
    # PgBouncer multiplexed the app's connections (plus the listener's direct session).
    assert pool["pool_size"] > SERVER_POOL and backends <= SERVER_POOL + 1, (pool, backends)
