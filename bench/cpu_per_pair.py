"""What limits claim+release throughput on this machine: CPU per pair, or WAL per flush?

Drives pgbench (a C client, so the client costs little) with 32 clients against four pairs
of transactions, each run on the same scratch database and interleaved over two rounds:

    raw          two one-statement UPDATEs of random rows (make bench's raw-update)
    raw+500B     the same, each transaction also writing a 500-byte WAL record
                 (pg_logical_emit_message): as many WAL bytes per pair as pgcapacity,
                 almost no extra CPU
    naive        conditional UPDATE + claim-row INSERT, then the mirror release
    pgcapacity   capacity.claim() on a random one of 10 000 codes, then capacity.release()

For each: pairs/s, how busy the machine's CPUs were (/proc/stat), CPU microseconds per
pair (all processes: server, client, kernel), and from pg_stat_wal the bytes per WAL flush
and the time per flush (with track_wal_io_timing on). If throughput follows CPU per pair
while flushes of the same size take the same time, the CPU is the limit. Needs a superuser
(pg_stat_reset_shared), pgbench (Debian's postgresql-15 ships it) and a server on this
machine (the CPU figures are this machine's); creates and drops a scratch database on
the server of DATABASE_URL (without it, on a private durable server, as make bench does;
ms/flush then shows '-' unless track_wal_io_timing is on).

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres .venv/bin/python bench/cpu_per_pair.py
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import psycopg

from api import pgserver
from api.bench.main import scratch_database

CLIENTS = 32
SECONDS = 8
CODES = 10_000

SCRIPTS = {
    "raw": """
\\set a random(0, 9999)
\\set b random(0, 9999)
UPDATE raw_rows SET n = n + 1 WHERE id = :a;
UPDATE raw_rows SET n = n + 1 WHERE id = :b;
""",
    "raw+500B": """
\\set a random(0, 9999)
\\set b random(0, 9999)
WITH u AS (UPDATE raw_rows SET n = n + 1 WHERE id = :a RETURNING 1)
  SELECT count(pg_logical_emit_message(true, 'pad', repeat('x', 500))) FROM u;
WITH u AS (UPDATE raw_rows SET n = n + 1 WHERE id = :b RETURNING 1)
  SELECT count(pg_logical_emit_message(true, 'pad', repeat('x', 500))) FROM u;
""",
    "naive": """
\\set c random(0, 9999)
\\set h random(1, 1000000000)
WITH t AS (UPDATE naive_codes SET usage = usage + 1 WHERE code_id = :c AND usage < max_uses
           RETURNING code_id)
  INSERT INTO naive_claims (code_id, holder) SELECT code_id, 'h' || :h FROM t RETURNING id \\gset
WITH e AS (UPDATE naive_claims SET released = true WHERE id = :id AND NOT released
           RETURNING code_id)
  UPDATE naive_codes n SET usage = usage - 1 FROM e WHERE n.code_id = e.code_id;
""",
    "pgcapacity": """
\\set c random(0, 9999)
\\set h random(1, 1000000000)
SELECT claim_id FROM capacity.claim('S' || :c, 'h' || :h) \\gset
SELECT released FROM capacity.release(:claim_id);
""",
}


def pgbench_path() -> str:
    found = shutil.which("pgbench")
    bindir = pgserver.find_bindir()
    if not found and bindir and (bindir / "pgbench").exists():
        found = str(bindir / "pgbench")
    if not found:
        raise SystemExit("pgbench not found (Debian: it comes with postgresql-15)")
    return found


def cpu_ticks() -> tuple[int, int]:
    """(busy, idle) jiffies of all CPUs since boot."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n")[0].split()[1:8]]
    user, nice, system, idle, iowait, irq, softirq = fields
    return user + nice + system + irq + softirq, idle + iowait


def measure(db: str, script: Path) -> dict:
    with psycopg.connect(db, autocommit=True) as conn:
        conn.execute("SELECT pg_stat_reset_shared('wal')")
    busy0, idle0 = cpu_ticks()
    out = subprocess.run(
        [
            pgbench_path(),
            "-n",
            "-f",
            str(script),
            "-c",
            str(CLIENTS),
            "-j",
            "2",
            "-T",
            str(SECONDS),
            db,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    busy1, idle1 = cpu_ticks()
    pairs = float(re.search(r"^tps = ([\d.]+)", out, re.M).group(1))
    with psycopg.connect(db, autocommit=True) as conn:
        wal_bytes, syncs, sync_ms = conn.execute(
            "SELECT wal_bytes, wal_sync, wal_sync_time FROM pg_stat_wal"
        ).fetchone()
    busy, idle = busy1 - busy0, idle1 - idle0
    hz = os.sysconf("SC_CLK_TCK")
    return {
        "pairs_per_s": pairs,
        "cpu_busy": busy / (busy + idle),
        "cpu_us_per_pair": busy / hz / (pairs * SECONDS) * 1e6,
        "bytes_per_flush": float(wal_bytes) / syncs if syncs else None,
        "ms_per_flush": sync_ms / syncs if syncs and sync_ms else None,
    }


def prepare(db: str) -> None:
    codes = [{"code": f"S{i}", "max_uses": 1_000_000} for i in range(CODES)]
    with psycopg.connect(db, autocommit=True) as conn:
        conn.execute("SELECT capacity.upsert_codes(%s::jsonb)", (json.dumps(codes),))
        conn.execute(f"""
            CREATE TABLE raw_rows (id int PRIMARY KEY, n int NOT NULL DEFAULT 0);
            INSERT INTO raw_rows SELECT i FROM generate_series(0, {CODES - 1}) i;
            CREATE TABLE naive_codes (code_id int PRIMARY KEY, usage int NOT NULL DEFAULT 0,
                                      max_uses int NOT NULL);
            INSERT INTO naive_codes SELECT i, 0, 1000000 FROM generate_series(0, {CODES - 1}) i;
            CREATE TABLE naive_claims (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                                       code_id int, holder text,
                                       released bool NOT NULL DEFAULT false)""")


def main() -> None:
    with scratch_database(os.environ.get("DATABASE_URL")) as (db, _):
        prepare(db)
        with tempfile.TemporaryDirectory() as tmp:
            paths = {}
            for label, text in SCRIPTS.items():
                paths[label] = Path(tmp) / f"{len(paths)}.sql"
                paths[label].write_text(text)
            print(f"{CLIENTS} clients, {SECONDS} s per row, two interleaved rounds")
            print(
                f"{'pair':<11} {'pairs/s':>8} {'CPU busy':>9} {'CPU us/pair':>12}"
                f" {'B/flush':>8} {'ms/flush':>9}"
            )
            for _ in range(2):
                for label, path in paths.items():
                    r = measure(db, path)
                    flush = f"{r['ms_per_flush']:9.2f}" if r["ms_per_flush"] else f"{'-':>9}"
                    print(
                        f"{label:<11} {r['pairs_per_s']:8.0f} {r['cpu_busy']:9.0%}"
                        f" {r['cpu_us_per_pair']:12.0f} {r['bytes_per_flush'] or 0:8.0f} {flush}"
                    )


if __name__ == "__main__":
    main()
