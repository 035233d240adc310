"""Pool caps under races: a cap of 10 units across the 5 codes of a pool, raced by 64
connections, never has more than 10 units in use, and its striped counters always agree
with the claims, while claims and releases churn and while the cap itself changes."""

from __future__ import annotations

import random
import threading
from collections import Counter

import psycopg
import pytest

from tests.support import LOCK_MODES, audit, call, reset, run_concurrently

CODES = [f"ORG-{i}" for i in range(5)]
CLAIM = "SELECT claim_id, units FROM capacity.claim(%s, %s, %s, %s)"
RELEASE = "SELECT released FROM capacity.release(%s::bigint)"
IN_USE = (
    "SELECT COALESCE(sum(units), 0) FROM capacity.claims WHERE pool = 'org' AND released_at IS NULL"
)


def pool_of_five(db: str, max_units: int | None) -> None:
    reset(db, [{"code": code, "max_uses": 10, "pool": "org"} for code in CODES])
    with psycopg.connect(db, autocommit=True) as conn:
        conn.execute("SELECT capacity.set_pool_limit('org', %s)", (max_units,))


def claim(conn, code: str, holder: str, mode: str, units: int = 1):
    while True:  # LOCK_CONTENDED means "retry"
        outcome, row = call(conn, CLAIM, (code, holder, mode, units))
        if outcome != "LOCK_CONTENDED":
            return outcome, row


class Watch:
    """Samples the units in use in pool org from another connection until stopped."""

    def __init__(self, db: str):
        self.db, self.most, self.samples = db, 0, 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        with psycopg.connect(self.db, autocommit=True) as conn:
            while not self.stop.is_set():
                self.most = max(self.most, conn.execute(IN_USE).fetchone()[0])
                self.samples += 1

    def __enter__(self) -> Watch:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join()


@pytest.mark.parametrize("mode", LOCK_MODES)
def test_64_connections_race_for_a_pool_cap_of_10(db, mode):
    """Each code has room for 10, so only the pool refuses: exactly 10 claims are made."""
    pool_of_five(db, 10)

    results = run_concurrently(
        db, 64, lambda i, conn: claim(conn, CODES[i % 5], f"user-{i}", mode)[0]
    )

    assert Counter(results) == {"ok": 10, "POOL_FULL": 54}
    assert audit(db)["usage"] == 10


@pytest.mark.parametrize("mode", LOCK_MODES)
def test_churn_of_multi_unit_claims_never_passes_the_pool_cap(db, mode):
    """Claims of 1-4 units on random codes, some kept a while, some released at once."""
    pool_of_five(db, 10)

    def work(i, conn):
        rng, seen, kept = random.Random(i), Counter(), []
        for n in range(30):
            outcome, row = claim(conn, rng.choice(CODES), f"user-{i}-{n}", mode, rng.randint(1, 4))
            seen[outcome] += 1
            if outcome == "ok":
                kept.append(row[0])
            if kept and (len(kept) > 1 or rng.random() < 0.5):
                assert call(conn, RELEASE, (kept.pop(0),)) == ("ok", (True,))
        for claim_id in kept:
            assert call(conn, RELEASE, (claim_id,)) == ("ok", (True,))
        return seen

    with Watch(db) as watch:
        seen = sum(run_concurrently(db, 64, work), Counter())

    assert set(seen) <= {"ok", "POOL_FULL", "CODE_FULL"}
    assert seen["ok"] > 0 and seen["POOL_FULL"] > 0, seen
    assert watch.samples > 0 and 0 < watch.most <= 10, (watch.most, watch.samples)
    assert audit(db)["usage"] == 0


def test_cap_changed_while_claims_race(db):
    """set_pool_limit recounts the pool under its lock: claims and releases in flight are
    counted once, whatever the cap moves to (or from no cap at all)."""
    pool_of_five(db, 10)
    stop = threading.Event()

    def work(i, conn):
        rng, seen, kept = random.Random(i), Counter(), []
        if i == 0:  # the admin: moves the cap between limits and no limit, ends at 50
            for max_units in [20, None, 8, 12, None, 30] * 5 + [50]:
                outcome, _ = call(conn, "SELECT capacity.set_pool_limit('org', %s)", (max_units,))
                seen[f"cap {max_units}: {outcome}"] += 1  # or CAPACITY_BELOW_USAGE
            stop.set()
            return seen
        n = 0
        while not stop.is_set():
            n += 1
            outcome, row = claim(conn, rng.choice(CODES), f"user-{i}-{n}", "advisory")
            seen[outcome] += 1
            if outcome == "ok":
                kept.append(row[0])
            if len(kept) > 1:
                assert call(conn, RELEASE, (kept.pop(0),)) == ("ok", (True,))
        return seen

    seen = sum(run_concurrently(db, 33, work), Counter())

    assert seen["cap None: ok"] == 10 and seen["cap 50: ok"] == 1 and seen["ok"] > 0, seen
    usage = audit(db)["usage"]  # the stripes of the last cap agree with the claims
    with psycopg.connect(db) as conn:
        assert conn.execute(IN_USE).fetchone()[0] == usage
        assert conn.execute(
            "SELECT max_units, units_in_use FROM capacity.pool_usage WHERE pool = 'org'"
        ).fetchone() == (50, usage)
