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
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import cpu_per_pair  # a sibling script, not a package

from api.bench.main import scratch_database

MARK = r"    INSERT INTO capacity\.pending_changes [^;]*;\n"
EVENT = r"    INSERT INTO capacity\.events [^;]*;\n"


def without(definition: str, statement: str) -> str:
    lean = re.sub(statement, "", definition, flags=re.S)
    if lean == definition:
        raise SystemExit(f"no {statement!r} in the installed function: update this script")
    return lean


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    installed = [
        cpu_per_pair.installed_definition("_internal.sql", name)
        for name in ("_finish_claim", "_end_claim")
    ]
    no_mark = [without(f, MARK) for f in installed]
    with scratch_database(os.environ.get("DATABASE_URL")) as (db, _):
        cpu_per_pair.prepare(db)  # codes S0..S9999
        with tempfile.TemporaryDirectory() as tmp:
            script = Path(tmp) / "spread.sql"
            script.write_text(cpu_per_pair.SCRIPTS["pgcapacity"])
            variants = {  # the spread pair's script, replacements in force during its run
                "installed": (script, []),
                "no mark": (script, no_mark),
                "no mark, no event": (script, [without(f, EVENT) for f in no_mark]),
            }
            cpu_per_pair.backend_cpu_of_variants(db, variants, installed, rounds)


if __name__ == "__main__":
    main()
