"""What the change-feed mark and the audit event cost a claim+release pair.

Every claim and release appends an audit event (SPEC §2) and a change-feed mark (an
unlogged row that capacity.publish_changes() turns into NOTIFY and the dashboard's
activity counts). This script measures the backend CPU of one spread claim+release pair
(pgbench, one client, `synchronous_commit = off`: bench/cpu_per_pair.py's measure) with
the functions as installed, then with _finish_claim() and _end_claim() swapped, for the
run only, for copies without the mark, and without the mark and the event (measurement
only: neither is a design). Interleaved rounds, medians at the end:

    .venv/bin/python bench/claim_parts.py [rounds]

Without DATABASE_URL it uses a private durable server, as make bench does. Needs pgbench.
"""

from __future__ import annotations

import os
import re
import statistics
import sys
import tempfile
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).parent))
import cpu_per_pair  # a sibling script, not a package

from api.bench.main import scratch_database

INTERNAL_SQL = Path(__file__).parent.parent / "sql" / "functions" / "_internal.sql"
MARK = r"    INSERT INTO capacity\.pending_changes [^;]*;\n"
EVENT = r"    INSERT INTO capacity\.events [^;]*;\n"


def installed_definition(function: str) -> str:
    """A capacity function's CREATE statement as installed (from _internal.sql)."""
    pattern = rf"CREATE OR REPLACE FUNCTION capacity\.{function}\(.*?\n\$\$;"
    found = re.search(pattern, INTERNAL_SQL.read_text(), re.S)
    if not found:
        raise SystemExit(f"capacity.{function}() not found in {INTERNAL_SQL}")
    return found.group(0)


def without(definition: str, statement: str) -> str:
    lean = re.sub(statement, "", definition, flags=re.S)
    if lean == definition:
        raise SystemExit(f"no {statement!r} in the installed function: update this script")
    return lean


def _us(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f} us"


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    installed = [installed_definition("_finish_claim"), installed_definition("_end_claim")]
    no_mark = [without(f, MARK) for f in installed]
    variants = {  # replacements in force during the variant's run
        "installed": [],
        "no mark": no_mark,
        "no mark, no event": [without(f, EVENT) for f in no_mark],
    }
    with scratch_database(os.environ.get("DATABASE_URL")) as (db, _):
        cpu_per_pair.prepare(db)  # codes S0..S9999
        with tempfile.TemporaryDirectory() as tmp:
            script = Path(tmp) / "spread.sql"
            script.write_text(cpu_per_pair.SCRIPTS["pgcapacity"])
            us: dict[str, list[float | None]] = {name: [] for name in variants}
            for round_no in range(1, rounds + 1):
                for name, replacements in variants.items():
                    with psycopg.connect(db, autocommit=True) as conn:
                        for statement in replacements:
                            conn.execute(statement)
                    try:
                        us[name].append(cpu_per_pair.backend_cpu_per_pair(db, script))
                    finally:
                        with psycopg.connect(db, autocommit=True) as conn:
                            for statement in installed:
                                conn.execute(statement)
                print(f"round {round_no}: " + "; ".join(f"{n} {_us(v[-1])}" for n, v in us.items()))
    print("backend CPU per spread claim+release pair, 1 client: median (by round)")
    for name, values in us.items():
        known = [v for v in values if v is not None]
        median = _us(statistics.median(known) if known else None)
        print(f"{name:<20} {median:>8}   ({' '.join(_us(v) for v in values)})")


if __name__ == "__main__":
    main()
