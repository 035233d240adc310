"""`pgcapacity serve` with PGCAPACITY_WORKERS=2: two real processes on one port."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from collections import Counter
from pathlib import Path

import httpx
import psycopg

from pgcapacity_bench.http import TOKEN, api_server
from tests.support import ADMIN, ADMIN_AUTH, assert_error, reset, wait_for

CLAIMS = 20
BURST = 32  # connections opened at once, as a load generator or a proxy's pool does
WRITER = {"Authorization": f"Bearer {TOKEN}"}


def _one_client_per_worker(base: str) -> list[httpx.Client]:
    """Keep-alive clients, each bound to a different worker: new connections are opened
    until two distinct worker pids answered (the kernel hands each to either worker)."""
    by_pid: dict[int, httpx.Client] = {}
    spare: list[httpx.Client] = []
    for _ in range(200):
        client = httpx.Client(base_url=base, timeout=30)
        pid = client.get("/health/detailed").json()["worker"]["pid"]
        if pid in by_pid:
            spare.append(client)
        else:
            by_pid[pid] = client
        if len(by_pid) == 2:
            break
    for client in spare:
        client.close()
    assert len(by_pid) == 2, "every connection went to one worker"
    return list(by_pid.values())


def test_two_workers_share_the_port_the_metrics_and_a_cache_clear(db):
    # QUIET is no claim's: no change-feed notification arrives for it while the test runs.
    reset(db, [{"code": "WORKERS", "max_uses": 1000}, {"code": "QUIET", "max_uses": 1000}])
    env = {"PGCAPACITY_ADMIN_TOKEN": ADMIN}
    with api_server(db, cache_ttl_ms=600_000, pool_max=2, workers=2, env=env) as base:
        workers = _one_client_per_worker(base)
        try:
            for i in range(CLAIMS):  # half through each worker
                r = workers[i % 2].post(
                    "/v1/codes/WORKERS/claims", json={"holder": f"w{i}"}, headers=WRITER
                )
                assert r.status_code == 201, r.text

            # Each worker's scrape counts the claims both served.
            for http in workers:
                text = http.get("/metrics").text
                assert f'operation="claimCode",outcome="ok"}} {CLAIMS}.0' in text, text[-2000:]

            # Counters in files the workers share cannot be reset by one of them.
            refused = workers[0].post("/v1/admin/metrics/reset", headers=ADMIN_AUTH)
            assert (
                "PGCAPACITY_WORKERS" in assert_error(refused, "FORBIDDEN", 403)["details"]["hint"]
            )

            # Both cache the status; then a change that notifies nobody (triggers off).
            for http in workers:
                assert http.get("/v1/codes/QUIET").json()["max_uses"] == 1000
            with psycopg.connect(db, autocommit=True) as conn:
                conn.execute("SET session_replication_role = replica")
                conn.execute("UPDATE capacity.codes SET max_uses = 999 WHERE code = 'QUIET'")
            assert all(h.get("/v1/codes/QUIET").json()["max_uses"] == 1000 for h in workers)

            # A cache clear through one worker reaches the other (the change channel).
            assert workers[0].post("/v1/admin/cache/clear", headers=ADMIN_AUTH).status_code == 200
            other = workers[1]
            seen = wait_for(lambda: other.get("/v1/codes/QUIET").json()["max_uses"] == 999)
            assert seen, "the other worker kept its cached status"
        finally:
            for http in workers:
                http.close()


def _listening_sockets(port: int) -> int:
    """How many sockets listen on 127.0.0.1:`port` (/proc/net/tcp, state 0A)."""
    rows = Path("/proc/net/tcp").read_text().splitlines()[1:]
    return sum(1 for r in rows if r.split()[3] == "0A" and r.split()[1] == f"0100007F:{port:04X}")


def _workers_answering_a_burst(base: str) -> Counter:
    """BURST connections opened at once (a barrier), each asking which worker it reached;
    all stay open until every one has answered."""
    barrier = threading.Barrier(BURST, timeout=30)  # a failed thread breaks it: no hang
    answered = threading.Barrier(BURST, timeout=30)
    pids: Counter = Counter()
    lock = threading.Lock()

    def connect() -> None:
        with httpx.Client(base_url=base, timeout=30) as client:
            barrier.wait()
            pid = client.get("/health/detailed").json()["worker"]["pid"]
            with lock:
                pids[pid] += 1
            answered.wait()

    threads = [threading.Thread(target=connect) for _ in range(BURST)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return pids


def test_each_worker_listens_on_its_own_socket_and_a_burst_is_spread(db):
    # One socket shared by the workers let whichever woke first accept a burst: 29 of 32
    # connections, once all 64, went to one of two workers (docs/benchmarks-history.md,
    # "Worker processes with a socket each").
    with api_server(db, cache_ttl_ms=1000, pool_max=2, workers=2) as base:
        port = int(base.rsplit(":", 1)[1])
        assert wait_for(lambda: _listening_sockets(port) == 2), _listening_sockets(port)
        pids = _workers_answering_a_burst(base)
    # Each connection goes to either socket by a hash of its addresses: a worker gets
    # fewer than 4 of 32 with a probability of about 3 in a million.
    assert sum(pids.values()) == BURST, pids
    assert len(pids) == 2 and min(pids.values()) >= 4, pids


def test_workers_refuse_a_port_in_use(db):
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        env = os.environ | {
            "DATABASE_URL": db,
            "PGCAPACITY_PORT": str(port),
            "PGCAPACITY_WORKERS": "2",
            "PGCAPACITY_AUTH": "off",
        }
        done = subprocess.run(
            [sys.executable, "-m", "pgcapacity.cli", "serve", "--log-level", "warning"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode == 1, done.stderr
    assert f"127.0.0.1:{port} is already in use" in done.stderr
