"""How much of a claim's CPU a different PL/pgSQL structure could save.

pgcapacity's claim+release costs its backend more CPU than the rows it writes
(`writes-only` in bench/cpu_per_pair.py). This script measures how much of that distance a
leaner structure of the same checks buys back, with the variants of bench/lean_claim.sql
(created in the scratch database only; each covers the common path of an open plain code
and hands every other case to the real function):

    current      capacity.claim() then capacity.release(claim_id), as installed
    lean         no unlocked look-ups of the holder's claim and limit (found under the lock
                 instead), validation and the helpers' statements in line
    lean2        lean without the code row's look-up either: the fewest statements that
                 still check everything (lock keyed on the code's text)
    writes-only  the rows alone, no checks at all (bench/cpu_per_pair.py)
    raw          two one-statement UPDATEs of random rows (make bench's raw-update)

All on a random one of 10 000 codes, with pgbench (a C client) and prepared statements.
Per variant: the backend's CPU per pair with one client and synchronous_commit off (as in
bench/cpu_per_pair.py), then pairs/s at 32 and 64 clients with synchronous commit on, as
a ratio to `raw` of the same round. Rounds interleave the variants; medians at the end.

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres .venv/bin/python bench/claim_structure.py

Without DATABASE_URL it uses a private durable server, as make bench does. Needs pgbench
and a server on this machine (the backend's CPU is read from /proc).
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).parent))
import cpu_per_pair  # a sibling script, not a package

from api.bench.main import scratch_database

ROUNDS = 5
SECONDS = 6
CLIENT_COUNTS = (32, 64)


def _pair(claim: str, release: str) -> str:
    return f"""
\\set c random(0, 9999)
\\set h random(1, 1000000000)
SELECT claim_id FROM {claim}('S' || :c, 'h' || :h) \\gset
SELECT released FROM {release}(:claim_id);
"""


VARIANTS = {
    "current": _pair("capacity.claim", "capacity.release"),
    "lean": _pair("capacity.claim_lean", "capacity.release_lean"),
    "lean2": _pair("capacity.claim_lean2", "capacity.release_lean"),
    "writes-only": cpu_per_pair.SCRIPTS["writes-only"],
    "raw": cpu_per_pair.SCRIPTS["raw"],
}


def main() -> None:
    with scratch_database(os.environ.get("DATABASE_URL")) as (db, _):
        cpu_per_pair.prepare(db)
        with psycopg.connect(db, autocommit=True) as conn:
            conn.execute((Path(__file__).parent / "lean_claim.sql").read_text())
        with tempfile.TemporaryDirectory() as tmp:
            paths = {}
            for label, text in VARIANTS.items():
                paths[label] = Path(tmp) / f"{len(paths)}.sql"
                paths[label].write_text(text)
            columns = ["backend us/pair, 1 client", *(f"x raw, {n} clients" for n in CLIENT_COUNTS)]
            results: dict[str, dict[str, list[float]]] = {
                label: {c: [] for c in columns} for label in paths
            }
            print(f"{ROUNDS} interleaved rounds; {SECONDS} s per throughput run")
            for round_no in range(1, ROUNDS + 1):
                for label, path in paths.items():
                    cpu = cpu_per_pair.backend_cpu_per_pair(db, path, pairs=5_000)
                    if cpu is not None:
                        results[label][columns[0]].append(cpu)
                for n, column in zip(CLIENT_COUNTS, columns[1:], strict=True):
                    rate = {
                        label: cpu_per_pair.measure(db, path, n, SECONDS)["pairs_per_s"]
                        for label, path in paths.items()
                    }
                    for label in paths:
                        results[label][column].append(rate[label] / rate["raw"])
                print(
                    f"round {round_no}: "
                    + ", ".join(
                        f"{label} {r[columns[0]][-1] if r[columns[0]] else float('nan'):.0f} us"
                        f" {' '.join(f'{r[c][-1]:.2f}' for c in columns[1:])}"
                        for label, r in results.items()
                    ),
                    flush=True,
                )
            print(f"{'median':<12}" + "".join(f"{c:>28}" for c in columns))
            for label, r in results.items():
                cells = [f"{statistics.median(r[c]):.0f}" if r[c] else "-" for c in columns[:1]]
                cells += [f"{statistics.median(r[c]):.2f}" for c in columns[1:]]
                print(f"{label:<12}" + "".join(f"{cell:>28}" for cell in cells))


if __name__ == "__main__":
    main()
