"""What limits claim+release throughput on this machine: CPU per pair, or WAL per flush?

Drives pgbench (a C client, so the client costs little) with 32 clients against five pairs
of transactions, each run on the same scratch database and interleaved over three rounds
(medians at the end):

    raw          two one-statement UPDATEs of random rows (make bench's raw-update)
    raw+500B     the same, each transaction also writing a 500-byte WAL record
                 (pg_logical_emit_message): as many WAL bytes per pair as pgcapacity,
                 almost no extra CPU
    naive        conditional UPDATE + claim-row INSERT, then the mirror release
    writes-only  pgcapacity's own table writes for a claim and its release (code counter,
                 claim row, audit event, change-feed mark), each as one plain statement with
                 no validation, look-ups, locks or holder check: what the writes cost alone
    pgcapacity   capacity.claim() on a random one of 10 000 codes, then capacity.release()

Every statement is prepared (pgbench -M prepared), as make bench's psycopg client prepares
a statement from its fifth execution on: otherwise the baselines would re-plan each time.

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

import contextlib
import json
import os
import re
import shutil
import statistics
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import psycopg
from procstat import cpu_seconds  # a sibling module: bench/ is on the path of its users

from api import pgserver
from api.bench.main import scratch_database

CLIENTS = 32
SECONDS = 8
ROUNDS = 3
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
    "writes-only": """
\\set c random(0, 9999)
\\set h random(1, 1000000000)
WITH t AS (UPDATE capacity.codes AS k SET usage_count = k.usage_count + 1
            WHERE k.code = 'S' || :c AND k.slots = 0 AND k.usage_count < k.max_uses AND k.is_active
            RETURNING k.code_id, k.code, k.pool, k.usage_count),
     cl AS (INSERT INTO capacity.claims (code_id, pool, holder) SELECT code_id, pool, 'h' || :h FROM t
            ON CONFLICT (holder, code_id) WHERE released_at IS NULL DO NOTHING
            RETURNING claim_id, holder),
     ev AS (INSERT INTO capacity.events (kind, code_id, code, pool, holder, claim_id, usage_after)
            SELECT 'claimed', t.code_id, t.code, t.pool, cl.holder, cl.claim_id, t.usage_count
              FROM t, cl),
     pc AS (INSERT INTO capacity.pending_changes (codes) SELECT ARRAY[t.code] FROM t)
SELECT claim_id FROM cl \\gset
WITH e AS (UPDATE capacity.claims SET released_at = now(), end_reason = 'released'
            WHERE claim_id = :claim_id AND released_at IS NULL RETURNING claim_id, code_id, holder),
     t AS (UPDATE capacity.codes AS k SET usage_count = k.usage_count - 1 FROM e
            WHERE k.code_id = e.code_id RETURNING k.code_id, k.code, k.pool, k.usage_count),
     ev AS (INSERT INTO capacity.events (kind, code_id, code, pool, holder, claim_id, usage_after)
            SELECT 'released', t.code_id, t.code, t.pool, e.holder, e.claim_id, t.usage_count
              FROM t, e),
     pc AS (INSERT INTO capacity.pending_changes (codes) SELECT ARRAY[t.code] FROM t)
SELECT 1 FROM e;
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


def pgbench_command(script: Path, clients: int) -> list[str]:
    """pgbench running one script with prepared statements, without vacuuming first."""
    return [pgbench_path(), "-n", "-M", "prepared", "-f", str(script), "-c", str(clients)]


def cpu_ticks() -> tuple[int, int]:
    """(busy, idle) jiffies of all CPUs since boot."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n")[0].split()[1:8]]
    user, nice, system, idle, iowait, irq, softirq = fields
    return user + nice + system + irq + softirq, idle + iowait


def measure(db: str, script: Path, clients: int = CLIENTS, seconds: int = SECONDS) -> dict:
    with psycopg.connect(db, autocommit=True) as conn:
        conn.execute("SELECT pg_stat_reset_shared('wal')")
    busy0, idle0 = cpu_ticks()
    out = subprocess.run(
        [*pgbench_command(script, clients), "-j", "2", "-T", str(seconds), db],
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
        "cpu_us_per_pair": busy / hz / (pairs * seconds) * 1e6,
        "bytes_per_flush": float(wal_bytes) / syncs if syncs else None,
        "ms_per_flush": sync_ms / syncs if syncs and sync_ms else None,
    }


def backend_cpu_per_pair(db: str, script: Path, pairs: int = 10_000) -> float | None:
    """CPU microseconds one backend spends per pair, one client, no waiting for the disk.

    synchronous_commit off takes the flush out; the backend's own user+system time (read
    from /proc until it exits) leaves out the client, the kernel's loopback work for the
    client and the other processes. None when no read of it came close to its end.
    """
    for _ in range(3):
        used = _backend_seconds(db, script, pairs)
        if used is not None:
            return used / pairs * 1e6
    return None


FUNCTIONS_SQL = Path(__file__).parent.parent / "sql" / "functions"


def installed_definition(sql_file: str, function: str) -> str:
    """A capacity function's CREATE statement as installed (from sql/functions/`sql_file`),
    for scripts that swap in a variant for a run and put this back after it."""
    path = FUNCTIONS_SQL / sql_file
    pattern = rf"CREATE OR REPLACE FUNCTION capacity\.{function}\(.*?\n\$\$;"
    found = re.search(pattern, path.read_text(), re.S)
    if not found:
        raise SystemExit(f"capacity.{function}() not found in {path}")
    return found.group(0)


def backend_cpu_of_variants(
    db: str, variants: dict[str, tuple[Path, list[str]]], installed: list[str], rounds: int
) -> None:
    """Prints backend_cpu_per_pair() of each variant, round by round and as medians: its
    script run with its statements (function variants) in force, and `installed` (the
    functions as installed) executed again after it."""
    us: dict[str, list[float | None]] = {name: [] for name in variants}
    for round_no in range(1, rounds + 1):
        for name, (script, replacements) in variants.items():
            with psycopg.connect(db, autocommit=True) as conn:
                for statement in replacements:
                    conn.execute(statement)
            try:
                us[name].append(backend_cpu_per_pair(db, script))
            finally:
                with psycopg.connect(db, autocommit=True) as conn:
                    for statement in installed:
                        conn.execute(statement)
        print(
            f"round {round_no}: "
            + "; ".join(f"{n} {v[-1]:.0f} us" for n, v in us.items() if v[-1]),
            flush=True,
        )
    print("backend CPU per pair, 1 client, synchronous_commit off: median (by round)")
    for name, values in us.items():
        known = [v for v in values if v is not None]
        median = f"{statistics.median(known):.0f}" if known else "-"
        by_round = " ".join("-" if v is None else f"{v:.0f}" for v in values)
        print(f"{name:<20} {median:>5} us   ({by_round})")


def _backend_seconds(db: str, script: Path, pairs: int) -> float | None:
    """The backend's CPU seconds for one pgbench run, or None when its last read was missed."""
    name = f"cpu_per_pair_{uuid.uuid4().hex[:12]}"  # not the previous run's exiting backend
    env = dict(os.environ, PGOPTIONS="-c synchronous_commit=off", PGAPPNAME=name)
    pid, used, read_at = None, None, 0.0
    with psycopg.connect(db, autocommit=True) as conn:  # before pgbench: it may end fast
        bench = subprocess.Popen(
            [*pgbench_command(script, 1), "-t", str(pairs), db], stdout=subprocess.DEVNULL, env=env
        )
        while bench.poll() is None:
            if pid is None:
                row = conn.execute(
                    "SELECT pid FROM pg_stat_activity WHERE application_name = %s", (name,)
                ).fetchone()
                pid = row[0] if row else None
            if pid is not None:
                with contextlib.suppress(FileNotFoundError):
                    used, read_at = cpu_seconds(pid), time.monotonic()
            time.sleep(0.005)
        ended_at = time.monotonic()  # before closing the connection, which takes its own time
    if bench.returncode:
        raise SystemExit(f"pgbench failed on {script}")
    return used if ended_at - read_at < 0.05 else None


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
            print(f"{CLIENTS} clients, {SECONDS} s per row, {ROUNDS} interleaved rounds")
            print(
                f"{'pair':<11} {'pairs/s':>8} {'CPU busy':>9} {'CPU us/pair':>12}"
                f" {'B/flush':>8} {'ms/flush':>9}"
            )
            results: dict[str, list[dict]] = {label: [] for label in paths}
            for _ in range(ROUNDS):
                for label, path in paths.items():
                    r = measure(db, path)
                    results[label].append(r)
                    flush = f"{r['ms_per_flush']:9.2f}" if r["ms_per_flush"] else f"{'-':>9}"
                    print(
                        f"{label:<11} {r['pairs_per_s']:8.0f} {r['cpu_busy']:9.0%}"
                        f" {r['cpu_us_per_pair']:12.0f} {r['bytes_per_flush'] or 0:8.0f} {flush}"
                    )
            print(
                f"{'median':<11} {'pairs/s':>8} {'x raw':>9} {'CPU us/pair':>12} {'backend us/pair, 1 client':>26}"
            )
            raw = statistics.median(r["pairs_per_s"] for r in results["raw"])
            for label, rows in results.items():
                pairs = statistics.median(r["pairs_per_s"] for r in rows)
                cpu = statistics.median(r["cpu_us_per_pair"] for r in rows)
                alone = [backend_cpu_per_pair(db, paths[label]) for _ in range(3)]
                shown = f"{statistics.median(alone):26.0f}" if None not in alone else f"{'-':>26}"
                print(f"{label:<11} {pairs:8.0f} {pairs / raw:9.2f} {cpu:12.0f} {shown}")


if __name__ == "__main__":
    main()
