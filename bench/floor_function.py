"""Does a PL/pgSQL function around the contract's writes cost throughput? make bench's
`floor-spread` pair (the rows SPEC §2 makes a claim and a release write, one statement
each, no checks) run bare and inside two PL/pgSQL functions that execute the very same
statements, beside the `raw-update` pair and pgcapacity's `spread` pair (advisory), with
make bench's own client and runner, interleaved rounds:

    .venv/bin/python bench/floor_function.py [ROUNDS] [CLIENTS]     # 8 rounds, 32 clients

On a private durable server (or DATABASE_URL's, in a scratch database). Prints each round's
pairs/s and ratio to raw, then every row's median ratio. If the function alone cost what
separates pgcapacity from the bare writes, no PL/pgSQL claim could come closer; if it costs
nothing, that distance is the checks.
"""

from __future__ import annotations

import os
import statistics
import sys

import psycopg

from api.bench import runner, workloads
from api.bench.main import scratch_database
from api.bench.workloads import FLOOR_CLAIM, FLOOR_RELEASE, SPREAD_CODES, spread_code

SECONDS = 3
# FLOOR_CLAIM ends "SELECT claim_id FROM claimed"; in PL/pgSQL it reads INTO a variable.
CLAIM_STATEMENT = (
    FLOOR_CLAIM.replace("%s", "p_code", 1)
    .replace("%s", "p_holder", 1)
    .replace("SELECT claim_id FROM claimed", "SELECT claim_id INTO v_id FROM claimed")
)
RELEASE_STATEMENT = FLOOR_RELEASE.replace("%s", "p_claim_id", 1)
FUNCTIONS = f"""
CREATE FUNCTION bench.floor_claim(p_code text, p_holder text) RETURNS bigint
LANGUAGE plpgsql AS $f$
DECLARE
    v_id bigint;
BEGIN
    {CLAIM_STATEMENT};
    RETURN v_id;
END $f$;
CREATE FUNCTION bench.floor_release(p_claim_id bigint) RETURNS void
LANGUAGE plpgsql AS $f$
BEGIN
    {RELEASE_STATEMENT};
END $f$;
"""


def _floor_in_functions(client: runner.Client) -> None:
    code = spread_code(client.rng.randrange(SPREAD_CODES))
    (claim_id,) = client.conn.execute(
        "SELECT bench.floor_claim(%s, %s)", (code, client.next_id())
    ).fetchone()
    if claim_id is None:
        client.tally["full"] += 1
        return
    client.conn.execute("SELECT bench.floor_release(%s)", (claim_id,))
    client.tally["ok"] += 1


OPS = {
    "raw-update": workloads.WORKLOADS["raw-update"].make_op(None, 0),
    "floor-spread": workloads.WORKLOADS["floor-spread"].make_op(None, 0),
    "floor-plpgsql": _floor_in_functions,
    "spread": workloads.WORKLOADS["spread"].make_op("advisory", 0),
}


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 8
    clients = int(sys.argv[2]) if len(sys.argv) > 2 else 32
    ratios: dict[str, list[float]] = {name: [] for name in OPS}
    with scratch_database(os.environ.get("DATABASE_URL")) as (db, _):
        with psycopg.connect(db, autocommit=True) as conn:
            workloads.install(conn)
            conn.execute(FUNCTIONS)
        print(f"pairs/s (x raw-update of the round), {clients} clients, {SECONDS} s per row")
        for rnd in range(rounds):
            rates = {}
            for name in OPS if rnd % 2 == 0 else list(OPS)[::-1]:
                with psycopg.connect(db, autocommit=True) as conn:
                    workloads.reset(conn, clients)
                conns = [psycopg.connect(db, autocommit=True) for _ in range(clients)]
                try:
                    m = runner.measure(conns, OPS[name], seconds=SECONDS, warmup=1, seed=rnd)
                finally:
                    for c in conns:
                        c.close()
                rates[name] = m.throughput
            raw = rates["raw-update"]
            line = "  ".join(f"{k} {v:.0f} ({v / raw:.2f})" for k, v in rates.items())
            print(f"round {rnd + 1}: {line}", flush=True)
            for name, rate in rates.items():
                ratios[name].append(rate / raw)
    for name, values in ratios.items():
        rounds_text = " ".join(f"{v:.2f}" for v in values)
        print(f"{name:<14} x raw: median {statistics.median(values):.2f}, rounds {rounds_text}")


if __name__ == "__main__":
    main()
