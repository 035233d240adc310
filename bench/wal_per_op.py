"""WAL bytes and time per claim+release, pgcapacity (spread and slotted codes) against the
naive single-row pair and the raw UPDATE pair, with the WAL broken down by record type.

One session, no concurrency: what each op costs the server by itself, in steady state
(after warm-up, no checkpoint in between, so no full-page images). WAL bytes are one cost
of an op; on the 2-core bench machine CPU per op turned out to be the one that limits
throughput (bench/cpu_per_pair.py, docs/benchmarks.md). Needs a superuser (pg_walinspect)
and CREATEDB; creates a scratch database on the server of DATABASE_URL and drops it
afterwards (without DATABASE_URL: on a private durable server, as make bench does).

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres .venv/bin/python bench/wal_per_op.py
"""

from __future__ import annotations

import json
import os
import random
import time

import psycopg

from api.bench.main import scratch_database

OPS = 3000
CODES = 10_000
SLOTS = 128  # one hot code, as in make bench's hot-slotted


def main() -> None:
    with (
        scratch_database(os.environ.get("DATABASE_URL")) as (db, _),
        psycopg.connect(db, autocommit=True) as conn,
    ):
        measure(conn)


def measure(conn: psycopg.Connection) -> None:
    codes = [{"code": f"S{i}", "max_uses": 1000} for i in range(CODES)]
    conn.execute("SELECT capacity.upsert_codes(%s::jsonb)", (json.dumps(codes),))
    conn.execute(f"""
        CREATE TABLE naive_codes (code_id int PRIMARY KEY, usage int NOT NULL DEFAULT 0,
                                  max_uses int NOT NULL);
        INSERT INTO naive_codes SELECT i, 0, 1000 FROM generate_series(0, {CODES - 1}) i;
        CREATE TABLE naive_claims (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                                   code_id int, holder text, released bool NOT NULL DEFAULT false)""")
    seq = iter(range(10**9))

    conn.execute(
        "SELECT capacity.upsert_codes(%s::jsonb)",
        (json.dumps([{"code": "HOT", "max_uses": 1_000_000, "slots": SLOTS}]),),
    )

    def claim_release(code: str) -> None:
        row = conn.execute(
            "SELECT claim_id FROM capacity.claim(%s, %s)", (code, f"h{next(seq)}")
        ).fetchone()
        conn.execute("SELECT released FROM capacity.release(%s::bigint)", row).fetchone()

    def pgcapacity() -> None:
        claim_release(f"S{random.randrange(CODES)}")

    def slotted() -> None:
        claim_release("HOT")

    def naive() -> None:
        row = conn.execute(
            "WITH t AS (UPDATE naive_codes SET usage = usage + 1"
            "            WHERE code_id = %s AND usage < max_uses RETURNING code_id)"
            " INSERT INTO naive_claims (code_id, holder) SELECT code_id, %s FROM t RETURNING id",
            (random.randrange(CODES), f"h{next(seq)}"),
        ).fetchone()
        conn.execute(
            "WITH e AS (UPDATE naive_claims SET released = true WHERE id = %s AND NOT released"
            "           RETURNING code_id)"
            " UPDATE naive_codes n SET usage = usage - 1 FROM e WHERE n.code_id = e.code_id",
            row,
        )

    def raw() -> None:
        for _ in range(2):
            conn.execute(
                "UPDATE naive_codes SET usage = usage + 1 WHERE code_id = %s",
                (random.randrange(CODES),),
            )

    conn.execute("CREATE EXTENSION IF NOT EXISTS pg_walinspect")
    runs = (
        ("raw pair", raw),
        ("naive pair", naive),
        ("pgcapacity", pgcapacity),
        (f"{SLOTS} slots", slotted),
    )
    for label, op in runs:
        for _ in range(OPS):  # warm caches, plans, and pages (their full-page images)
            op()
        start = conn.execute("SELECT pg_current_wal_insert_lsn()").fetchone()[0]
        began = time.perf_counter()
        for _ in range(OPS):
            op()
        took = (time.perf_counter() - began) / OPS * 1e6
        end = conn.execute("SELECT pg_current_wal_insert_lsn()").fetchone()[0]
        wal = conn.execute("SELECT pg_wal_lsn_diff(%s, %s)", (end, start)).fetchone()[0]
        print(f"{label:<12} {float(wal) / OPS:7.0f} WAL bytes/op {took:7.0f} us/op")
        rows = conn.execute(
            'SELECT "resource_manager/record_type", count, combined_size'
            "  FROM pg_get_wal_stats(%s, %s, true)"
            " WHERE count > 0 ORDER BY combined_size DESC LIMIT 8",
            (start, end),
        ).fetchall()
        for record, count, size in rows:
            print(f"    {record:<24} {count / OPS:5.2f} per op {size / OPS:6.0f} bytes/op")


if __name__ == "__main__":
    main()
