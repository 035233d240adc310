"""What a heartbeat costs, and what expiry costs, with N active claims and 2N ended ones.

Heartbeats 20 000 active claims three times over (one session, synchronous commit): WAL
bytes and time per heartbeat, how many of the claims updates were HOT (no index entry),
and how much the claims indexes grew. Then makes 1 000 claims idle and times
expire_idle_claims ending them, and a second call that finds nothing. Needs CREATEDB;
creates and drops a scratch database on the server of DATABASE_URL (without it, on a
private durable server, as make bench does).

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres .venv/bin/python bench/heartbeat_cost.py
"""

from __future__ import annotations

import json
import os
import time

import psycopg

from api.bench.main import scratch_database

ACTIVE = int(os.environ.get("ACTIVE", 100_000))
BEATS = 20_000
ROUNDS = 3


def measure(conn: psycopg.Connection) -> None:
    codes = [{"code": f"S{i}", "max_uses": 100_000} for i in range(1000)]
    conn.execute("SELECT capacity.upsert_codes(%s::jsonb)", (json.dumps(codes),))
    # Claims written directly (one statement each), then the counters made to match.
    conn.execute(
        "INSERT INTO capacity.claims (code_id, pool, holder, released_at, end_reason)"
        " SELECT c.code_id, c.pool, 'old' || i, now(), 'released'"
        "   FROM generate_series(1, %s) i JOIN capacity.codes c ON c.code = 'S' || (i %% 1000)",
        (2 * ACTIVE,),
    )
    ids = [
        row[0]
        for row in conn.execute(
            "INSERT INTO capacity.claims (code_id, pool, holder)"
            " SELECT c.code_id, c.pool, 'h' || i"
            "   FROM generate_series(1, %s) i JOIN capacity.codes c ON c.code = 'S' || (i %% 1000)"
            " RETURNING claim_id",
            (ACTIVE,),
        )
    ]
    conn.execute(
        "UPDATE capacity.codes c SET usage_count = (SELECT count(*) FROM capacity.claims k"
        " WHERE k.code_id = c.code_id AND k.released_at IS NULL)"
    )
    conn.execute("VACUUM ANALYZE capacity.claims")
    index_bytes = (
        "SELECT sum(pg_relation_size(indexrelid)) FROM pg_index"
        " WHERE indrelid = 'capacity.claims'::regclass"
    )
    size0 = conn.execute(index_bytes).fetchone()[0]
    start = conn.execute("SELECT pg_current_wal_insert_lsn()").fetchone()[0]
    began = time.perf_counter()
    for _ in range(ROUNDS):
        for claim_id in ids[:BEATS]:
            conn.execute("SELECT capacity.heartbeat(%s)", (claim_id,))
    beats = ROUNDS * BEATS
    took = (time.perf_counter() - began) / beats * 1e6
    end = conn.execute("SELECT pg_current_wal_insert_lsn()").fetchone()[0]
    wal = float(conn.execute("SELECT pg_wal_lsn_diff(%s, %s)", (end, start)).fetchone()[0])
    time.sleep(1)  # table statistics reach pg_stat_user_tables within a second
    hot, updates = conn.execute(
        "SELECT n_tup_hot_upd, n_tup_upd FROM pg_stat_user_tables"
        " WHERE relid = 'capacity.claims'::regclass"
    ).fetchone()
    grew = (conn.execute(index_bytes).fetchone()[0] - size0) // 1024
    print(f"{ACTIVE} active claims, {2 * ACTIVE} ended; {beats} heartbeats:")
    print(f"  {wal / beats:.0f} WAL bytes and {took:.0f} us per heartbeat")
    print(f"  claims updates HOT: {hot} of {updates}; claims indexes grew {grew} kB")

    conn.execute(
        "UPDATE capacity.claims SET last_seen_at = now() - interval '2 hours'"
        " WHERE claim_id = ANY (%s)",
        (ids[-1000:],),
    )
    conn.execute("VACUUM ANALYZE capacity.claims")
    for label in ("ending 1 000 idle claims", "finding none"):
        began = time.perf_counter()
        row = conn.execute("SELECT * FROM capacity.expire_idle_claims('30 minutes')").fetchone()
        print(f"  expire_idle_claims, {label}: {(time.perf_counter() - began) * 1000:.1f} ms {row}")


def main() -> None:
    with (
        scratch_database(os.environ.get("DATABASE_URL")) as (db, _),
        psycopg.connect(db, autocommit=True) as conn,
    ):
        measure(conn)


if __name__ == "__main__":
    main()
