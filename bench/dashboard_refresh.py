"""What one dashboard refresh costs, against the hour's traffic and against JIT.

The API refreshes capacity.dashboard twice a second while writes arrive. On a scratch
database with make bench's 11 002 codes, with 0 and then EVENTS events in the last hour
(claims and releases spread over the 10 000 spread codes, as 500 claim+release pairs/s
leave in an hour), then with EXTRA_CODES more codes, it times:

    refresh_dashboard(true)            as shipped (migration 0008), jit = off
    the same with jit = on             what JIT compilation would add
    per-code totals before 0008        the view's per-code part as it was: a slot subquery
                                       per code, with jit off and on (PostgreSQL compiles
                                       when the estimate passes jit_above_cost, and
                                       optimizes above jit_optimize_above_cost)
    last hour from the events          the view's last-hour part as it was, jit off and on

Medians of ROUNDS calls, in ms. Needs nothing but a server (DATABASE_URL, else a private
one as make bench starts); creates and drops a scratch database.

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres .venv/bin/python bench/dashboard_refresh.py
"""

from __future__ import annotations

import os
import statistics
import time

import psycopg

from api.bench import workloads
from api.bench.main import scratch_database

EVENTS = int(os.environ.get("EVENTS", 3_600_000))
EXTRA_CODES = int(os.environ.get("EXTRA_CODES", 100_000))
ROUNDS = 5
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


def median_ms(conn: psycopg.Connection, sql: str) -> float:
    times = []
    for _ in range(ROUNDS):
        began = time.perf_counter()
        conn.execute(sql).fetchall()
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
    cells = [codes, events, shipped, with_jit]
    cells += both_ways(conn, CODE_TOTALS_BEFORE) + both_ways(conn, EVENTS_LAST_HOUR)
    return [f"{c:,}" if isinstance(c, int) else f"{c}" for c in cells]


def main() -> None:
    with (
        scratch_database(os.environ.get("DATABASE_URL")) as (db, _),
        psycopg.connect(db, autocommit=True) as conn,
    ):
        workloads.install(conn)
        conn.execute("ANALYZE")
        jit = conn.execute("SELECT current_setting('jit'), pg_jit_available()").fetchone()
        print(f"jit setting {jit[0]}, JIT available: {jit[1]}; ms, median of {ROUNDS}")
        header = ["codes", "events, last hour", "refresh", "refresh, jit on",
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
