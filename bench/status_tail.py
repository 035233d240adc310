"""Where the cached status's p99 at 64 clients comes from: background work, or CPU placement.

make bench's `http-status-cached` row at 64 clients has had p99s from 4 to 30 ms between
runs. This script starts `pgcapacity serve` (one process, as that row does) several ways on
one scratch database and runs the same wrk load (64 connections, GET of one cached code)
against each, interleaved:

    default        as deployed: change feed every 50 ms, dashboard refresh every 500 ms
    no-feed        the change-feed publisher effectively off (every 100 s)
    no-refresh     the dashboard refresher effectively off
    no-background  both off
    pinned         as default, with the API process on CPU 0 and wrk on CPU 1 (PostgreSQL on
                   both): the load generator cannot take the API's core (Linux, 2 CPUs or more)

Each round starts each server anew and takes two 3-second wrk runs after a 1-second warm-up.
It prints requests/s and p99 per run, then per variant the median p99, how many runs had a
p99 under 20 ms, and the median requests/s.

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres .venv/bin/python bench/status_tail.py [ROUNDS]

Without DATABASE_URL it uses a private durable server, as make bench does. Needs wrk.
"""

from __future__ import annotations

import json
import os
import statistics
import sys

import psycopg

from api.bench import http
from api.bench.main import scratch_database

OFF = "100000"  # ms: longer than the run, so the task never fires after its first call
VARIANTS = {
    "default": {},
    "no-feed": {"PGCAPACITY_CHANGE_FEED_MS": OFF},
    "no-refresh": {"PGCAPACITY_DASHBOARD_REFRESH_MS": OFF},
    "no-background": {"PGCAPACITY_CHANGE_FEED_MS": OFF, "PGCAPACITY_DASHBOARD_REFRESH_MS": OFF},
    "pinned": {},
}
CLIENTS = 64
RUNS_PER_ROUND = 2
SECONDS = 3


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    every_cpu = os.sched_getaffinity(0)
    with scratch_database(os.environ.get("DATABASE_URL")) as (db, _):
        with psycopg.connect(db, autocommit=True) as conn:
            conn.execute(
                "SELECT capacity.upsert_codes(%s::jsonb)",
                (json.dumps([{"code": http.HOT_CODE, "max_uses": 1_000_000}]),),
            )
        runs: dict[str, list[tuple[float, float]]] = {name: [] for name in VARIANTS}
        for round_no in range(1, rounds + 1):
            for name, env in VARIANTS.items():
                pinned = name == "pinned"
                try:
                    # Children inherit the CPUs of the thread that starts them.
                    if pinned:
                        os.sched_setaffinity(0, {0})
                    with http.api_server(db, cache_ttl_ms=1000, pool_max=20, env=env) as base:
                        if pinned:
                            os.sched_setaffinity(0, {1})
                        http.run_wrk(base, "http-status-cached", CLIENTS, 1)  # warm-up
                        for _ in range(RUNS_PER_ROUND):
                            row = http.run_wrk(base, "http-status-cached", CLIENTS, SECONDS)
                            runs[name].append((row.ops_per_s, row.p99_ms))
                finally:
                    os.sched_setaffinity(0, every_cpu)
            print(
                f"round {round_no}: "
                + "; ".join(
                    f"{name} "
                    + ", ".join(f"{rps:.0f}/s p99 {p99:.1f}" for rps, p99 in r[-RUNS_PER_ROUND:])
                    for name, r in runs.items()
                ),
                flush=True,
            )
        print(f"{'variant':<14} {'p99 median':>10} {'p99 < 20 ms':>12} {'req/s':>8}")
        for name, r in runs.items():
            p99s = [p99 for _, p99 in r]
            under = sum(p99 < 20 for p99 in p99s)
            print(
                f"{name:<14} {statistics.median(p99s):10.1f} {f'{under} of {len(p99s)}':>12}"
                f" {statistics.median(rps for rps, _ in r):8.0f}"
            )


if __name__ == "__main__":
    main()
