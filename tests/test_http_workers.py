"""`pgcapacity serve` with PGCAPACITY_WORKERS=2: two real processes on one port."""

from __future__ import annotations

import httpx
import psycopg

from api.bench.http import TOKEN, api_server
from tests.concurrency import reset
from tests.http_support import ADMIN, ADMIN_AUTH, assert_error, wait_for

CLAIMS = 20
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
