"""What one dashboard refresh costs, against the hour's traffic and against JIT.

The API refreshes capacity.dashboard twice a second while writes arrive. On a scratch
database with make bench's 11 002 codes, with 0 and then EVENTS events in the last hour
(claims and releases spread over the 10 000 spread codes, as 500 claim+release pairs/s
leave in an hour), then with EXTRA_CODES more codes, it times:

    refresh_dashboard(true)            as shipped (migration 0009: rows rewritten), jit = off
    the same with jit = on             what JIT compilation would add
    materialized view, CONCURRENTLY    the same aggregate as a materialized view refreshed
                                       CONCURRENTLY, as the dashboard was before 0009
    per-code totals before 0008        the view's per-code part as it was: a slot subquery
                                       per code, with jit off and on (PostgreSQL compiles
                                       when the estimate passes jit_above_cost, and
                                       optimizes above jit_optimize_above_cost)
    last hour from the events          the view's last-hour part as it was, jit off and on

Medians of ROUNDS calls (5; EVENTS, EXTRA_CODES and ROUNDS from the environment), in ms.
Needs nothing but a server (DATABASE_URL, else a private one as make bench starts);
creates and drops a scratch database.

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres .venv/bin/python bench/dashboard_refresh.py

`load [rounds]`: what a refresh costs while claims run, as the API's refresher meets them:
make bench's spread claims from 32 connections for 8 s while one session refreshes every
0.5 s, either as shipped (refresh_dashboard(true)) or as before migration 0009 (the same
publishing and pruning, then the materialized view refreshed CONCURRENTLY); the CPU of
that session's backend per refresh (from /proc, so the server must be local) and the
claims' pairs/s, interleaved rounds, medians at the end:

    .venv/bin/python bench/dashboard_refresh.py load 4
"""

from __future__ import annotations

import os
import statistics
import sys
import threading
import time
from pathlib import Path

import psycopg
from procstat import cpu_seconds  # a sibling module: bench/ is the script's directory

from api.bench import runner, workloads
from api.bench.main import scratch_database

REFRESH_SQL = Path(__file__).parent.parent / "sql" / "functions" / "refresh_dashboard.sql"
EVENTS = int(os.environ.get("EVENTS", 3_600_000))
EXTRA_CODES = int(os.environ.get("EXTRA_CODES", 100_000))
ROUNDS = int(os.environ.get("ROUNDS", 5))
REFRESH = "SELECT * FROM capacity.refresh_dashboard(true)"
# The last-hour columns as the dashboard computed them before migration 0008.
EVENTS_LAST_HOUR = """
    SELECT e.pool, count(*) FILTER (WHERE e.kind = 'claimed'), count(*) FILTER (WHERE e.kind = 'expired')
      FROM capacity.events AS e WHERE e.occurred_at > now() - interval '1 hour' GROUP BY e.pool"""
# The per-code totals as the dashboard computed them before migration 0008.
CODE_TOTALS_BEFORE = """
    SELECT c.pool, count(*), count(*) FILTER (WHERE u.usage >= c.max_uses),
           count(*) FILTER (WHERE u.usage >= 0.9 * c.max_uses), sum(u.usage)
      FROM capacity.codes AS c
     CROSS JOIN LATERAL (
           SELECT c.usage_count + COALESCE((SELECT sum(s.used) FROM capacity.code_slots AS s
                                            WHERE s.code_id = c.code_id AND c.slots > 0), 0) AS usage
     ) AS u
     GROUP BY c.pool"""
ADD_EVENTS = """
    INSERT INTO capacity.events (occurred_at, kind, code_id, code, pool, holder, claim_id, usage_after)
    SELECT now() - interval '1 hour' + (i * 3600.0 / %(n)s) * interval '1 second',
           CASE WHEN i %% 2 = 0 THEN 'claimed' ELSE 'released' END::capacity.event_kind,
           c.code_id, c.code, c.pool, 'h' || i, i, 1
      FROM generate_series(1, %(n)s) AS i
      JOIN capacity.codes AS c ON c.code = 'BENCH-S' || lpad((i %% 10000)::text, 5, '0')"""


def aggregate_sql() -> str:
    """The dashboard's aggregate as refresh_dashboard() computes it (its INSERT's query)."""
    text = REFRESH_SQL.read_text()
    start = text.index("    WITH slot_usage AS (")
    return text[start : text.index(";", start)]


def median_ms(conn: psycopg.Connection, sql: str) -> float:
    times = []
    for _ in range(ROUNDS):
        began = time.perf_counter()
        cur = conn.execute(sql)
        if cur.description:
            cur.fetchall()
        times.append((time.perf_counter() - began) * 1000)
    return round(statistics.median(times), 1)


def both_ways(conn: psycopg.Connection, sql: str) -> list[float]:
    """`sql` timed with jit off, then on."""
    conn.execute("SET jit = off")
    off = median_ms(conn, sql)
    conn.execute("SET jit = on")
    on = median_ms(conn, sql)
    conn.execute("RESET jit")
    return [off, on]


def row(conn: psycopg.Connection) -> list[str]:
    codes, events = conn.execute(
        "SELECT (SELECT count(*) FROM capacity.codes),"
        " (SELECT count(*) FROM capacity.events WHERE occurred_at > now() - interval '1 hour')"
    ).fetchone()
    shipped = median_ms(conn, REFRESH)
    conn.execute("ALTER FUNCTION capacity.refresh_dashboard(boolean, interval) SET jit = on")
    with_jit = median_ms(conn, REFRESH)
    conn.execute("ALTER FUNCTION capacity.refresh_dashboard(boolean, interval) SET jit = off")
    conn.execute("SET jit = off")
    as_before = median_ms(conn, "REFRESH MATERIALIZED VIEW CONCURRENTLY dashboard_before_0009")
    conn.execute("RESET jit")
    cells = [codes, events, shipped, with_jit, as_before]
    cells += both_ways(conn, CODE_TOTALS_BEFORE) + both_ways(conn, EVENTS_LAST_HOUR)
    return [f"{c:,}" if isinstance(c, int) else f"{c}" for c in cells]


def create_materialized_dashboard(conn: psycopg.Connection) -> None:
    """dashboard_before_0009: the same aggregate as a materialized view (the dashboard
    before migration 0009), with the unique index REFRESH ... CONCURRENTLY needs."""
    conn.execute(f"CREATE MATERIALIZED VIEW dashboard_before_0009 AS {aggregate_sql()}")
    conn.execute("CREATE UNIQUE INDEX ON dashboard_before_0009 (pool)")


LOAD_REFRESHES = {
    "as shipped": REFRESH,
    "materialized view": (
        "SELECT capacity.publish_changes();"
        " DELETE FROM capacity.pool_activity WHERE minute < now() - interval '1 hour';"
        " REFRESH MATERIALIZED VIEW CONCURRENTLY dashboard_before_0009"
    ),
}


def refresh_under_load(db: str, refresh: str, seed: int) -> tuple[float, float]:
    """(backend CPU ms per refresh, spread pairs/s) of one 8 s run."""
    with psycopg.connect(db, autocommit=True) as conn:
        workloads.reset(conn, 32)
    stop, used = threading.Event(), []

    def refresher() -> None:
        with psycopg.connect(db, autocommit=True) as conn:
            conn.execute("SET jit = off")
            pid = conn.execute("SELECT pg_backend_pid()").fetchone()[0]
            began, calls = cpu_seconds(pid), 0
            while not stop.is_set():
                conn.execute(refresh)
                calls += 1
                stop.wait(0.5)
            used.append((cpu_seconds(pid) - began) * 1000 / calls)

    thread = threading.Thread(target=refresher)
    thread.start()
    conns = [psycopg.connect(db, autocommit=True) for _ in range(32)]
    try:
        spread = workloads.WORKLOADS["spread"].make_op("advisory", 0)
        measured = runner.measure(conns, spread, seconds=8, warmup=0, seed=seed)
    finally:
        stop.set()
        thread.join()
        for conn in conns:
            conn.close()
    return used[0], measured.throughput


def load(rounds: int) -> None:
    with scratch_database(os.environ.get("DATABASE_URL")) as (db, _):
        with psycopg.connect(db, autocommit=True) as conn:
            workloads.install(conn)
            create_materialized_dashboard(conn)
        results: dict[str, list[tuple[float, float]]] = {name: [] for name in LOAD_REFRESHES}
        for rnd in range(rounds):
            names = list(LOAD_REFRESHES) if rnd % 2 == 0 else list(LOAD_REFRESHES)[::-1]
            for name in names:
                cpu, pairs = refresh_under_load(db, LOAD_REFRESHES[name], rnd)
                results[name].append((cpu, pairs))
                print(f"{name:<18} {cpu:5.1f} ms CPU per refresh, {pairs:5.0f} pairs/s", flush=True)
        print("medians: backend CPU per refresh, pairs/s of the claims alongside")
        for name, runs in results.items():
            cpu = statistics.median(c for c, _ in runs)
            pairs = statistics.median(p for _, p in runs)
            print(f"{name:<18} {cpu:5.1f} ms  {pairs:5.0f} pairs/s")


def main() -> None:
    if sys.argv[1:2] == ["load"]:
        load(int(sys.argv[2]) if len(sys.argv) > 2 else 4)
        return
    with (
        scratch_database(os.environ.get("DATABASE_URL")) as (db, _),
        psycopg.connect(db, autocommit=True) as conn,
    ):
        workloads.install(conn)
        conn.execute("ANALYZE")
        jit = conn.execute("SELECT current_setting('jit'), pg_jit_available()").fetchone()
        print(f"jit setting {jit[0]}, JIT available: {jit[1]}; ms, median of {ROUNDS}")
        create_materialized_dashboard(conn)
        header = ["codes", "events, last hour", "refresh", "refresh, jit on",
                  "materialized view, CONCURRENTLY",
                  "per-code totals before", "the same, jit on",
                  "last hour from events", "the same, jit on"]  # fmt: skip
        print(" | ".join(header))
        print(" | ".join(row(conn)))
        conn.execute(ADD_EVENTS, {"n": EVENTS})
        conn.execute("VACUUM ANALYZE capacity.events")
        print(" | ".join(row(conn)))
        conn.execute(
            "SELECT capacity.upsert_codes(jsonb_agg(jsonb_build_object("
            "'code', 'EXTRA' || i, 'max_uses', 10, 'pool', 'extra-' || (i %% 20))))"
            " FROM generate_series(1, %s) AS i",
            (EXTRA_CODES,),
        )
        conn.execute("ANALYZE")
        print(" | ".join(row(conn)))


if __name__ == "__main__":
    main()
