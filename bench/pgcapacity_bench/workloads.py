"""What the benchmark runs: pgcapacity's workloads and the baselines they are compared to.

Every op is one unit of work of a client, timed as a whole: a claim followed by its
release (two transactions, one round trip each), or a read. Baselines have the same
shape, so ratios compare like with like:

* naive-hot / naive-spread: the design every team writes first: a conditional
  ``UPDATE ... WHERE usage < max`` plus a claim-row insert in one statement, and the
  mirror image to release; on one row, or on a random one of 10 000.
* raw-update: two one-statement ``UPDATE`` transactions on random rows of 10 000: what
  the server does for a write when nothing is being checked.
* floor-spread: the rows the domain model makes every claim and release write, and nothing else:
  the code's counter (with its CHECK), the claim row (token, one-active-per-holder index)
  and the audit event, one statement per transaction, on pgcapacity's own tables and
  spread codes, with no validation, look-up, lock, holder limit or change feed. No
  implementation of the contract writes less, so its ``x raw`` is the most any spread
  claim+release can reach on this server.
* select1: two ``SELECT 1`` round trips: the ceiling of the clients and the network.

The capacity features are measured against ``spread`` in the same lock mode, the claim
they add to: ``spread-units`` (1-4 units a claim), ``spread-lease`` (every claim with a
lease), ``spread-pool-cap`` (the spread codes' pool capped, on its striped counters) and
``spread-pool-row`` (the same cap counted on one row, which is what striping avoids);
and ``hot-wait`` (claim_wait on a code of 4 units, so most clients queue) against ``hot``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

import psycopg

from pgcapacity import rules
from pgcapacity_bench.runner import Client, Measurement, Op

SPREAD_CODES = 10_000
HOLDER_CODES = 1_000
HOLDER_LIMIT = 3
CLIENTS_PER_HOLDER = 4  # more clients than the limit share a holder, so the limit bites
READ_BATCH = 100
HOT_CODE = "BENCH-HOT"
HOT_SLOTTED_CODE = "BENCH-HOT-SLOTTED"
# Each slot stays locked through its transaction's commit (WAL flush), by claims and by
# releases alike: at 64 clients, 64 slots left claims waiting for a slot (1 160-1 290
# ops/s), 128 did not (1 763); 256 measured the same as 128.
HOT_SLOTS = 128
WAIT_CODE = "BENCH-WAIT"
WAIT_UNITS = 4
SPREAD_POOL = "bench-spread"
# Far above what the clients hold, so the cap costs its bookkeeping and refuses nothing.
POOL_CAP = 1_000_000
LOCK_MODES = rules.LOCK_MODES

# What a failed call means to the benchmark.
OUTCOMES = {
    "CP005": "full",
    "CP006": "refused",
    "CP008": "contention",
    "55P03": "contention",
    "40001": "contention",
    "40P01": "deadlock",
}


def spread_code(i: int) -> str:
    return f"BENCH-S{i:05d}"


def holder_code(i: int) -> str:
    return f"BENCH-H{i:04d}"


@dataclass(frozen=True)
class Workload:
    name: str
    description: str
    baseline: str | None  # the workload this one's ratio is taken against
    lock_modes: tuple[str | None, ...]
    make_op: Callable[[str | None, int], Op]  # (lock mode, client retries) -> op
    audited: bool = True  # pgcapacity workloads get the correctness line
    pool_stripes: int | None = None  # the spread codes' pool capped on this many stripes


def _failure(client: Client, err: psycopg.Error) -> str:
    outcome = OUTCOMES.get(err.sqlstate or "", "error")
    client.tally[outcome] += 1
    if outcome == "error":
        client.tally[f"error {err.sqlstate}: {str(err).splitlines()[0][:80]}"] += 1
    return outcome


def _claim_then_release(
    client: Client,
    code: str,
    holder: str,
    mode: str,
    retries: int,
    claim_sql: str = "SELECT claim_id, units FROM capacity.claim(%s, %s, %s)",
    extra: tuple = (),
) -> None:
    """One op: a claim (retried on contention) and its release; effects count units."""
    for attempt in range(retries + 1):
        try:
            row = client.conn.execute(claim_sql, (code, holder, mode, *extra)).fetchone()
            break
        except psycopg.Error as err:
            if _failure(client, err) != "contention":
                return
            if attempt == retries:
                client.tally["giveup"] += 1
                return
            client.tally["retries"] += 1
    claim_id, units = row
    client.effects["claimed"] += units
    client.conn.execute("SELECT released FROM capacity.release(%s::bigint)", (claim_id,))
    client.effects["released"] += units
    client.tally["ok"] += 1


def _hot(mode: str | None, retries: int) -> Op:
    return lambda c: _claim_then_release(c, HOT_CODE, c.next_id(), mode, retries)


def _hot_slotted(mode: str | None, retries: int) -> Op:
    return lambda c: _claim_then_release(c, HOT_SLOTTED_CODE, c.next_id(), mode, retries)


def _spread(mode: str | None, retries: int) -> Op:
    def op(c: Client) -> None:
        code = spread_code(c.rng.randrange(SPREAD_CODES))
        _claim_then_release(c, code, c.next_id(), mode, retries)

    return op


def _hot_wait(mode: str | None, retries: int) -> Op:
    sql = "SELECT claim_id, units FROM capacity.claim_wait(%s, %s, '60 s', %s)"
    return lambda c: _claim_then_release(c, WAIT_CODE, c.next_id(), mode, retries, sql)


def _spread_units(mode: str | None, retries: int) -> Op:
    def op(c: Client) -> None:
        code = spread_code(c.rng.randrange(SPREAD_CODES))
        units = (c.rng.randint(1, 4),)
        sql = "SELECT claim_id, units FROM capacity.claim(%s, %s, %s, units => %s)"
        _claim_then_release(c, code, c.next_id(), mode, retries, sql, units)

    return op


def _spread_lease(mode: str | None, retries: int) -> Op:
    def op(c: Client) -> None:
        code = spread_code(c.rng.randrange(SPREAD_CODES))
        sql = "SELECT claim_id, units FROM capacity.claim(%s, %s, %s, lease => '15 minutes')"
        _claim_then_release(c, code, c.next_id(), mode, retries, sql)

    return op


def _holders(mode: str | None, retries: int) -> Op:
    def op(c: Client) -> None:
        code = holder_code(c.rng.randrange(HOLDER_CODES))
        _claim_then_release(c, code, f"holder-{c.index // CLIENTS_PER_HOLDER}", mode, retries)

    return op


def _read(_mode: str | None, _retries: int) -> Op:
    def op(c: Client) -> None:
        c.conn.execute(
            "SELECT can_claim FROM capacity.check(%s)",
            (spread_code(c.rng.randrange(SPREAD_CODES)),),
        ).fetchone()
        batch = [spread_code(c.rng.randrange(SPREAD_CODES)) for _ in range(READ_BATCH)]
        c.conn.execute("SELECT count(*) FROM capacity.usage_batch(%s)", (batch,)).fetchone()
        c.tally["ok"] += 1

    return op


NAIVE_CLAIM = """
WITH taken AS (
    UPDATE bench.naive_codes SET usage = usage + 1
     WHERE code_id = %s AND usage < max_uses RETURNING code_id)
INSERT INTO bench.naive_claims (code_id, holder) SELECT code_id, %s FROM taken
RETURNING claim_id"""
NAIVE_RELEASE = """
WITH ended AS (
    UPDATE bench.naive_claims SET released = true
     WHERE claim_id = %s AND NOT released RETURNING code_id)
UPDATE bench.naive_codes AS k SET usage = k.usage - 1 FROM ended
 WHERE k.code_id = ended.code_id RETURNING k.usage"""


def _naive(pick: Callable[[Client], int]) -> Callable[[str | None, int], Op]:
    def make(_mode: str | None, _retries: int) -> Op:
        def op(c: Client) -> None:
            try:
                row = c.conn.execute(NAIVE_CLAIM, (pick(c), c.next_id())).fetchone()
            except psycopg.Error as err:
                _failure(c, err)
                return
            if row is None:
                c.tally["full"] += 1
                return
            c.conn.execute(NAIVE_RELEASE, row).fetchone()
            c.tally["ok"] += 1

        return op

    return make


FLOOR_CLAIM = """
WITH taken AS (
    UPDATE capacity.codes SET usage_count = usage_count + 1
     WHERE code = %s AND usage_count < max_uses RETURNING code_id, code, pool, usage_count),
claimed AS (
    INSERT INTO capacity.claims (code_id, pool, holder) SELECT code_id, pool, %s FROM taken
    RETURNING claim_id, holder),
logged AS (
    INSERT INTO capacity.events (kind, code_id, code, pool, holder, claim_id, usage_after)
    SELECT 'claimed', t.code_id, t.code, t.pool, c.holder, c.claim_id, t.usage_count
      FROM taken t, claimed c)
SELECT claim_id FROM claimed"""
FLOOR_RELEASE = """
WITH ended AS (
    UPDATE capacity.claims SET released_at = now(), end_reason = 'released'
     WHERE claim_id = %s AND released_at IS NULL RETURNING claim_id, code_id, holder),
given AS (
    UPDATE capacity.codes AS k SET usage_count = k.usage_count - 1 FROM ended
     WHERE k.code_id = ended.code_id RETURNING k.code_id, k.code, k.pool, k.usage_count)
INSERT INTO capacity.events (kind, code_id, code, pool, holder, claim_id, usage_after)
SELECT 'released', g.code_id, g.code, g.pool, e.holder, e.claim_id, g.usage_count
  FROM given g, ended e"""


def _floor(_mode: str | None, _retries: int) -> Op:
    def op(c: Client) -> None:
        code = spread_code(c.rng.randrange(SPREAD_CODES))
        row = c.conn.execute(FLOOR_CLAIM, (code, c.next_id())).fetchone()
        if row is None:
            c.tally["full"] += 1
            return
        c.conn.execute(FLOOR_RELEASE, row)
        c.tally["ok"] += 1

    return op


def _raw_update(_mode: str | None, _retries: int) -> Op:
    def op(c: Client) -> None:
        for _ in range(2):
            c.conn.execute(
                "UPDATE bench.raw_rows SET n = n + 1 WHERE id = %s",
                (c.rng.randrange(SPREAD_CODES),),
            )
        c.tally["ok"] += 1

    return op


def _select1(_mode: str | None, _retries: int) -> Op:
    def op(c: Client) -> None:
        c.conn.execute("SELECT 1").fetchone()
        c.conn.execute("SELECT 1").fetchone()
        c.tally["ok"] += 1

    return op


WORKLOADS = {
    w.name: w
    for w in [
        Workload("hot", "claim+release, one plain code", "naive-hot", LOCK_MODES, _hot),
        Workload(
            "hot-slotted",
            f"claim+release, one code with {HOT_SLOTS} slots",
            "naive-hot",
            LOCK_MODES,
            _hot_slotted,
        ),
        Workload(
            "hot-wait",
            f"claim_wait+release, one code of {WAIT_UNITS} units (clients queue)",
            "hot",
            LOCK_MODES,
            _hot_wait,
        ),
        Workload(
            "spread", "claim+release, random of 10 000 codes", "naive-spread", LOCK_MODES, _spread
        ),
        Workload(
            "spread-units",
            "claim+release of 1-4 units, random of 10 000 codes",
            "spread",
            LOCK_MODES,
            _spread_units,
        ),
        Workload(
            "spread-lease",
            "claim+release with a 15-minute lease, random of 10 000 codes",
            "spread",
            LOCK_MODES,
            _spread_lease,
        ),
        Workload(
            "spread-pool-cap",
            "claim+release, random of 10 000 codes, their pool capped (16 stripes)",
            "spread",
            LOCK_MODES,
            _spread,
            pool_stripes=16,
        ),
        Workload(
            "spread-pool-row",
            "the same, the pool's cap counted on one row",
            "spread",
            LOCK_MODES,
            _spread,
            pool_stripes=1,
        ),
        Workload(
            "holders",
            f"claim+release, 1 000 codes, holder limit {HOLDER_LIMIT}, "
            f"{CLIENTS_PER_HOLDER} clients per holder",
            "naive-spread",
            LOCK_MODES,
            _holders,
        ),
        Workload("read", f"check + usage_batch of {READ_BATCH} codes", "select1", (None,), _read),
        Workload(
            "naive-hot",
            "baseline: conditional UPDATE + insert, one row",
            None,
            (None,),
            _naive(lambda c: 0),
            audited=False,
        ),
        Workload(
            "naive-spread",
            "baseline: the same on a random row of 10 000",
            None,
            (None,),
            _naive(lambda c: 1 + c.rng.randrange(SPREAD_CODES)),
            audited=False,
        ),
        Workload(
            "floor-spread",
            "baseline: the contract's writes alone, random of 10 000 codes",
            None,
            (None,),
            _floor,
            audited=False,
        ),
        Workload(
            "raw-update",
            "baseline: two one-statement UPDATEs, random rows",
            None,
            (None,),
            _raw_update,
            audited=False,
        ),
        Workload("select1", "baseline: two SELECT 1", None, (None,), _select1, audited=False),
    ]
}


def install(conn: psycopg.Connection) -> None:
    """The codes and baseline tables every row uses (on a fresh database)."""
    codes = [
        {"code": HOT_CODE, "max_uses": 2_000_000_000, "pool": "bench-hot"},
        {
            "code": HOT_SLOTTED_CODE,
            "max_uses": 2_000_000_000,
            "pool": "bench-hot-slotted",
            "slots": HOT_SLOTS,
        },
    ]
    codes.append({"code": WAIT_CODE, "max_uses": WAIT_UNITS, "pool": "bench-wait"})
    codes += [
        {"code": spread_code(i), "max_uses": 1000, "pool": SPREAD_POOL} for i in range(SPREAD_CODES)
    ]
    codes += [
        {"code": holder_code(i), "max_uses": 1000, "pool": "bench-holders"}
        for i in range(HOLDER_CODES)
    ]
    conn.execute("SELECT capacity.upsert_codes(%s::jsonb)", (json.dumps(codes),))
    conn.execute("""
        CREATE SCHEMA bench;
        CREATE TABLE bench.naive_codes (
            code_id integer PRIMARY KEY, usage integer NOT NULL DEFAULT 0,
            max_uses integer NOT NULL, CHECK (usage BETWEEN 0 AND max_uses));
        CREATE TABLE bench.naive_claims (
            claim_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            code_id integer NOT NULL REFERENCES bench.naive_codes,
            holder text NOT NULL, released boolean NOT NULL DEFAULT false);
        CREATE TABLE bench.raw_rows (id integer PRIMARY KEY, n bigint NOT NULL DEFAULT 0);
        INSERT INTO bench.naive_codes (code_id, max_uses)
             SELECT i, CASE WHEN i = 0 THEN 2000000000 ELSE 1000 END
               FROM generate_series(0, 10000) AS i;
        INSERT INTO bench.raw_rows (id) SELECT i FROM generate_series(0, 9999) AS i;
    """)


def reset(conn: psycopg.Connection, max_clients: int, workload: Workload | None = None) -> None:
    """Between rows: no history, fresh holder limits, the spread pool capped only for the
    pool-cap rows, vacuumed tables, so that no row pays for the rows before it."""
    conn.execute("""
        TRUNCATE capacity.claims, capacity.events, capacity.holders, capacity.pending_changes,
                 capacity.pool_activity,
                 bench.naive_claims""")
    conn.execute("UPDATE capacity.codes SET usage_count = 0 WHERE usage_count <> 0")
    conn.execute("SELECT capacity.reconcile(true)")  # slot rows recounted (no claims left)
    conn.execute("UPDATE bench.naive_codes SET usage = 0 WHERE usage <> 0")
    for h in range(max_clients // CLIENTS_PER_HOLDER + 1):
        conn.execute(
            "SELECT capacity.set_holder_limit('bench-holders', %s, %s)",
            (f"holder-{h}", HOLDER_LIMIT),
        )
    cap_pool(conn, workload.pool_stripes if workload else None)
    tables = ("capacity.codes", "capacity.code_slots", "capacity.holders", "capacity.pool_stripes")
    for table in (*tables, "bench.naive_codes", "bench.raw_rows"):
        conn.execute(f"VACUUM ANALYZE {table}")


def cap_pool(conn: psycopg.Connection, stripes: int | None) -> None:
    """Caps the spread codes' pool at POOL_CAP (with no claims active), or removes the cap.
    With another number of stripes than set_pool_limit chooses, the stripes are laid out
    again by hand: one stripe is the single counter row that striping avoids."""
    conn.execute(
        "SELECT capacity.set_pool_limit(%s, %s)", (SPREAD_POOL, POOL_CAP if stripes else None)
    )
    if stripes:
        conn.execute(
            "UPDATE capacity.pool_limits SET stripes = %s WHERE pool = %s", (stripes, SPREAD_POOL)
        )
        conn.execute("SELECT capacity._spread_pool(%s, 0)", (SPREAD_POOL,))


def audit(conn: psycopg.Connection, workload: Workload, m: Measurement) -> list[str]:
    """The correctness line: what is wrong after the row (empty when all holds)."""
    problems = []
    outstanding = m.effects["claimed"] - m.effects["released"]
    pool = {
        "hot": "bench-hot",
        "hot-slotted": "bench-hot-slotted",
        "hot-wait": "bench-wait",
        "spread": SPREAD_POOL,
        "spread-units": SPREAD_POOL,
        "spread-lease": SPREAD_POOL,
        "spread-pool-cap": SPREAD_POOL,
        "spread-pool-row": SPREAD_POOL,
        "holders": "bench-holders",
    }.get(workload.name)
    if pool:
        used = conn.execute(
            "SELECT COALESCE(sum(usage_count), 0) FROM capacity.code_usage WHERE pool = %s",
            (pool,),
        ).fetchone()[0]
        if used != outstanding:
            problems.append(f"usage {used} != units claimed-released {outstanding}")
        peak = conn.execute(
            "SELECT COALESCE(max(e.usage_after - c.max_uses), -1) FROM capacity.events e"
            "  JOIN capacity.codes c USING (code_id) WHERE c.pool = %s",
            (pool,),
        ).fetchone()[0]
        if peak > 0:
            problems.append(f"usage went {peak} above capacity")
    if workload.name == "holders":
        worst = conn.execute(
            "SELECT COALESCE(max(active_claims), 0) FROM capacity.holders WHERE pool = 'bench-holders'"
        ).fetchone()[0]
        if worst > HOLDER_LIMIT:
            problems.append(f"a holder held {worst} > {HOLDER_LIMIT}")
    problems += invariant_problems(conn)
    if m.tally["deadlock"]:
        problems.append(f"{m.tally['deadlock']} deadlocks")
    return problems


def invariant_problems(conn: psycopg.Connection) -> list[str]:
    """What must hold whatever the clients saw: pgcapacity's invariant audit
    (capacity._invariant_violations), one problem per broken rule."""
    broken = conn.execute(
        "SELECT rule, count(*) FROM capacity._invariant_violations() GROUP BY rule ORDER BY rule"
    ).fetchall()
    return [f"{rule}: broken for {n}" for rule, n in broken]
