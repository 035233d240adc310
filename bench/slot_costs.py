"""What a hot slotted code's claim+release costs, and how much of it is the exact total.

A slotted claim and its release each report the code's whole usage (and log it in the
audit event): a sum over all of the code's slot rows, twice per pair. This script measures
one hot code's claim+release with pgbench (a C client, prepared statements) at 32 and 64
clients, interleaved over rounds, in these variants on one scratch database:

    128 slots           as make bench's hot-slotted row
    64 slots, 32 slots  fewer rows to sum, more claims meeting a locked slot
    128 slots, ff 10    slot rows created with fillfactor 10 (about 15 rows per page, room
                        for HOT updates)
    128 slots, no sum   capacity._slot_usage() swapped for one returning 0 during this
                        variant's runs (wrong totals: a measurement only, put back after)
    128 slots, snapshot held
                        as 128 slots, while another session holds a snapshot open (a
                        REPEATABLE READ transaction that has read a row), as a long report
                        or pg_dump would: old row versions cannot be pruned meanwhile
    plain, plain, snapshot held
                        the same hot code without slots, without and with the held snapshot

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres .venv/bin/python bench/slot_costs.py [ROUNDS]

With `cpu` first (`slot_costs.py cpu [ROUNDS]`) it measures instead the backend's CPU per
pair with one client and synchronous_commit off (cpu_per_pair.backend_cpu_per_pair), for
the 128-slot code as installed, without the sum, without the subtransaction of
_take_slot's first attempt (its BEGIN ... EXCEPTION block removed: a row SKIP LOCKED
locks and rejects would then stay locked, so unsafe near capacity; a measurement only),
and for claims on spread codes: where a slotted pair's CPU beyond a spread one goes.

Each round's line gives every variant's pairs/s and, in brackets, the share of its updates
of the table it counts in (code_slots, or codes for a plain code) that were HOT (heap-only:
no new index entries), and that table's index size after its runs.

Without DATABASE_URL it uses a private durable server, as make bench does. Needs pgbench.
"""

from __future__ import annotations

import json
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

SECONDS = 5
CLIENT_COUNTS = (32, 64)
NO_SUM = """CREATE OR REPLACE FUNCTION capacity._slot_usage(p_code_id bigint)
RETURNS integer LANGUAGE plpgsql STABLE AS $$ BEGIN RETURN 0; END $$"""
# code, slots, fillfactor of code_slots when its rows are created, whether the sum is off,
# whether a snapshot is held during the runs
VARIANTS = {
    "128 slots": ("HOT-128", 128, None, False, False),
    "64 slots": ("HOT-64", 64, None, False, False),
    "32 slots": ("HOT-32", 32, None, False, False),
    "128 slots, ff 10": ("HOT-128-FF10", 128, 10, False, False),
    "128 slots, no sum": ("HOT-128-NOSUM", 128, None, True, False),
    "128 slots, snapshot held": ("HOT-128-HELD", 128, None, False, True),
    "plain": ("HOT-PLAIN", 0, None, False, False),
    "plain, snapshot held": ("HOT-PLAIN-HELD", 0, None, False, True),
}


def slot_usage_definition() -> str:
    return cpu_per_pair.installed_definition("_slots.sql", "_slot_usage")


def without_subtransaction(take_slot: str) -> str:
    """_take_slot() with its first attempt outside a subtransaction (measurement only)."""
    lean = take_slot.replace(
        "    BEGIN\n        -- From a random slot up", "    -- From a random slot up"
    )
    lean = re.sub(
        r"        RAISE EXCEPTION 'no free unlocked slot'.*?\n    END;\n", "", lean, flags=re.S
    )
    if lean.count("EXCEPTION") != take_slot.count("EXCEPTION") - 2:
        raise SystemExit("_take_slot() changed: update without_subtransaction()")
    return lean


def create_codes(db: str) -> None:
    """One code per variant; the fillfactor variant's slot rows go to pages of their own."""
    with psycopg.connect(db, autocommit=True) as conn:
        for code, slots, fillfactor, *_ in sorted(VARIANTS.values(), key=lambda v: v[2] or 0):
            if fillfactor:
                conn.execute(f"ALTER TABLE capacity.code_slots SET (fillfactor = {fillfactor})")
            codes = [{"code": code, "max_uses": 1_000_000, "slots": slots}]
            conn.execute("SELECT capacity.upsert_codes(%s::jsonb)", (json.dumps(codes),))
        conn.execute("ALTER TABLE capacity.code_slots RESET (fillfactor)")


def table_state(db: str, table: str) -> tuple[int, int, int]:
    """Updates, HOT updates (from the statistics) and index bytes of a capacity table."""
    with psycopg.connect(db, autocommit=True) as conn:
        return conn.execute(
            "SELECT n_tup_upd, n_tup_hot_upd, pg_indexes_size(relid) FROM pg_stat_user_tables"
            " WHERE schemaname = 'capacity' AND relname = %s",
            (table,),
        ).fetchone()


def pair(code: str) -> str:
    return f"""
\\set h random(1, 1000000000)
SELECT claim_id FROM capacity.claim('{code}', 'h' || :h) \\gset
SELECT released FROM capacity.release(:claim_id);
"""


def cpu_main(rounds: int) -> None:
    """Backend CPU per pair, one client: slotted as installed, without its parts, spread."""
    take_slot = cpu_per_pair.installed_definition("_slots.sql", "_take_slot")
    installed = [slot_usage_definition(), take_slot]
    variants = {  # script, replacements in force during the variant's run
        "128 slots": ("hot", []),
        "no sum": ("hot", [NO_SUM]),
        "no subtransaction": ("hot", [without_subtransaction(take_slot)]),
        "spread codes": ("spread", []),
    }
    with scratch_database(os.environ.get("DATABASE_URL")) as (db, _):
        create_codes(db)
        cpu_per_pair.prepare(db)  # codes S0..S9999
        with tempfile.TemporaryDirectory() as tmp:
            scripts = {"hot": Path(tmp) / "hot.sql", "spread": Path(tmp) / "spread.sql"}
            scripts["hot"].write_text(pair(VARIANTS["128 slots"][0]))
            scripts["spread"].write_text(cpu_per_pair.SCRIPTS["pgcapacity"])
            cpu_per_pair.backend_cpu_of_variants(
                db,
                {name: (scripts[script], swaps) for name, (script, swaps) in variants.items()},
                installed,
                rounds,
            )


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "cpu":
        cpu_main(int(sys.argv[2]) if len(sys.argv) > 2 else 5)
        return
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 4
    installed = slot_usage_definition()
    with scratch_database(os.environ.get("DATABASE_URL")) as (db, _):
        create_codes(db)
        with tempfile.TemporaryDirectory() as tmp:
            paths = {}
            for name, (code, *_) in VARIANTS.items():
                paths[name] = Path(tmp) / f"{len(paths)}.sql"
                paths[name].write_text(pair(code))
            rates: dict[str, dict[int, list[float]]] = {
                n: {c: [] for c in CLIENT_COUNTS} for n in VARIANTS
            }
            for round_no in range(1, rounds + 1):
                order = list(VARIANTS) if round_no % 2 else list(reversed(VARIANTS))
                notes = {}
                for name in order:
                    _, slots, _, no_sum, hold = VARIANTS[name]
                    table = "code_slots" if slots else "codes"
                    updates0, hot0, _ = table_state(db, table)
                    with psycopg.connect(db, autocommit=True) as conn:
                        conn.execute(NO_SUM if no_sum else installed)
                    with psycopg.connect(db) as reader:
                        if hold:
                            reader.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                            reader.execute("SELECT 1 FROM capacity.codes LIMIT 1")
                        try:
                            for clients in CLIENT_COUNTS:
                                measured = cpu_per_pair.measure(db, paths[name], clients, SECONDS)
                                rates[name][clients].append(measured["pairs_per_s"])
                        finally:
                            reader.rollback()
                            updates1, hot1, index_bytes = table_state(db, table)
                            with psycopg.connect(db, autocommit=True) as conn:
                                conn.execute(installed)
                                conn.execute(f"VACUUM capacity.{table}")
                    hot_share = (hot1 - hot0) / max(updates1 - updates0, 1)
                    notes[name] = f"[HOT {hot_share:.0%}, {index_bytes // 1024} kB]"
                print(
                    f"round {round_no}: "
                    + "; ".join(
                        f"{name} "
                        + "/".join(f"{r[c][-1]:.0f}" for c in CLIENT_COUNTS)
                        + f" {notes[name]}"
                        for name, r in rates.items()
                    ),
                    flush=True,
                )
            base = rates["128 slots"]  # the ratios are to make bench's configuration
            print(
                f"pairs/s at {'/'.join(map(str, CLIENT_COUNTS))} clients, medians; x 128 slots by round"
            )
            for name, r in rates.items():
                medians = "/".join(f"{statistics.median(r[c]):.0f}" for c in CLIENT_COUNTS)
                by_round = "  ".join(
                    f"{c}: " + " ".join(f"{a / b:.2f}" for a, b in zip(r[c], base[c], strict=True))
                    for c in CLIENT_COUNTS
                )
                print(f"{name:<25} {medians:>11}   {by_round}")


if __name__ == "__main__":
    main()
