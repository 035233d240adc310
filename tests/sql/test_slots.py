"""Slotted codes: exact near capacity, no deadlock, switchable under load.

(The races of tests/test_concurrency.py run on slotted codes too.)
"""

from __future__ import annotations

import random
import threading
from collections import Counter

import psycopg
import pytest

from tests.support import LOCK_MODES, audit, call, reset, run_concurrently

CLAIM = "SELECT claim_id FROM capacity.claim(%s, %s, %s)"


def slots_of(conn: psycopg.Connection, code: str) -> list[tuple[int, int, int]]:
    return conn.execute(
        "SELECT s.slot, s.used, s.cap FROM capacity.code_slots s JOIN capacity.codes c USING"
        " (code_id) WHERE c.code = %s ORDER BY s.slot",
        (code,),
    ).fetchall()


def lock_slots(conninfo: str, code: str, slots: list[int]) -> psycopg.Connection:
    """Another session holding the given slot rows (as a claim in flight would)."""
    holder = psycopg.connect(conninfo)
    holder.execute(
        "SELECT 1 FROM capacity.code_slots s JOIN capacity.codes c USING (code_id)"
        " WHERE c.code = %s AND s.slot = ANY (%s) FOR NO KEY UPDATE OF s",
        (code, slots),
    )
    return holder


def waiting_on_a_lock(conninfo: str, pid: int) -> bool:
    with psycopg.connect(conninfo) as conn:
        return conn.execute(
            "SELECT wait_event_type = 'Lock' FROM pg_stat_activity WHERE pid = %s", (pid,)
        ).fetchone() == (True,)


def wait_until(condition, timeout: float = 30.0) -> bool:
    done = threading.Event()
    for _ in range(int(timeout / 0.02)):
        if condition():
            return True
        done.wait(0.02)
    return False


def test_upsert_spreads_capacity_over_slots(db):
    reset(db, [{"code": "SPREAD", "max_uses": 10, "slots": 4}])
    with psycopg.connect(db) as conn:
        assert slots_of(conn, "SPREAD") == [(0, 0, 3), (1, 0, 3), (2, 0, 2), (3, 0, 2)]


@pytest.mark.parametrize("mode", ["wait", "advisory"])
def test_a_claim_waits_for_a_locked_slot_with_room_instead_of_reporting_full(db, mode):
    reset(db, [{"code": "NEAR", "max_uses": 4, "slots": 4}])  # one unit per slot
    blocker = lock_slots(db, "NEAR", [0, 1, 2])
    try:
        with psycopg.connect(db, autocommit=True) as conn:
            assert call(conn, CLAIM, ("NEAR", "first", mode))[0] == "ok"  # slot 3, at once
        # Now the only units left sit in locked slots: the claim must wait for one.
        result = {}
        with psycopg.connect(db, autocommit=True) as waiter:
            pid = waiter.info.backend_pid
            t = threading.Thread(
                target=lambda: result.update(r=call(waiter, CLAIM, ("NEAR", "second", mode)))
            )
            t.start()
            assert wait_until(lambda: waiting_on_a_lock(db, pid)), "the claim did not wait"
            blocker.rollback()  # the slots' holder finishes without using them
            t.join(30)
        assert result["r"][0] == "ok", result
    finally:
        blocker.close()
    assert audit(db)["usage"] == 2


def test_nowait_reports_contention_not_full_when_free_slots_are_locked(db):
    reset(db, [{"code": "NEAR", "max_uses": 2, "slots": 2}])
    with psycopg.connect(db, autocommit=True) as conn:
        assert call(conn, CLAIM, ("NEAR", "first", "wait"))[0] == "ok"
        free = [slot for slot, used, cap in slots_of(conn, "NEAR") if used < cap]
        blocker = lock_slots(db, "NEAR", free)
        try:
            assert call(conn, CLAIM, ("NEAR", "second", "nowait"))[0] == "LOCK_CONTENDED"
        finally:
            blocker.close()
        assert call(conn, CLAIM, ("NEAR", "second", "nowait"))[0] == "ok"
        assert call(conn, CLAIM, ("NEAR", "third", "nowait"))[0] == "CODE_FULL"


def test_full_slots_locked_by_releases_in_flight_answer_full_at_once(db):
    reset(db, [{"code": "FULL", "max_uses": 2, "slots": 2}])
    with psycopg.connect(db, autocommit=True) as conn:
        for h in ("a", "b"):
            assert call(conn, CLAIM, ("FULL", h, "wait"))[0] == "ok"
        blocker = lock_slots(db, "FULL", [0, 1])  # e.g. two releases not yet committed
        try:
            assert call(conn, CLAIM, ("FULL", "c", "wait"))[0] == "CODE_FULL"
        finally:
            blocker.close()


@pytest.mark.parametrize("mode", LOCK_MODES)
def test_no_deadlock_and_no_oversell_near_capacity(db, mode):
    """48 connections claim and release on a code with fewer units than clients, spread
    over 8 slots: the case where a naive SKIP LOCKED fallback deadlocks."""
    reset(db, [{"code": "TIGHT", "max_uses": 20, "slots": 8}])
    peak = Counter()
    guard = threading.Lock()

    def work(i, conn):
        rnd, outcomes = random.Random(i), Counter()
        for n in range(40):
            outcome, row = call(conn, CLAIM, ("TIGHT", f"h{i}-{n}", mode))
            outcomes[outcome] += 1
            if outcome == "ok":
                usage = conn.execute(
                    "SELECT usage_count FROM capacity.code_usage WHERE code = 'TIGHT'"
                ).fetchone()[0]
                with guard:
                    peak["max"] = max(peak["max"], usage)
                if rnd.random() < 0.9:
                    assert call(conn, "SELECT capacity.release(%s)", row)[0] == "ok"
        return outcomes

    total = sum(run_concurrently(db, 48, work), Counter())
    assert set(total) <= {"ok", "CODE_FULL", "LOCK_CONTENDED"}, total  # no 40P01 deadlock
    assert total["ok"] > 100
    assert peak["max"] <= 20
    audit(db)


def test_switching_slots_under_load_keeps_every_count_exact(db):
    reset(db, [{"code": "FLIP", "max_uses": 50}])
    stop = threading.Event()
    progress = threading.Condition()
    claimed = Counter()  # successful claims so far, under `progress`

    def work(i, conn):
        if i == 0:  # the switcher: plain -> 8 -> 3 -> 0 -> 16 ..., capacity moving too
            switched = Counter()
            try:
                for n, slots in enumerate([8, 3, 0, 16, 1, 0, 12, 5] * 3):
                    # Claims land between every two switches, however fast either runs.
                    with progress:
                        landed = progress.wait_for(lambda n=n: claimed["ok"] >= 3 * (n + 1), 60)
                    assert landed, f"no claim succeeded for 60 s before switch {n}"
                    spec = f'[{{"code": "FLIP", "max_uses": {50 + n % 3}, "slots": {slots}}}]'
                    # Lowering max_uses below the usage of the moment is refused, and
                    # then nothing changes (the slots included).
                    switched[call(conn, "SELECT * FROM capacity.upsert_codes(%s)", (spec,))[0]] += 1
            finally:
                stop.set()
            assert set(switched) <= {"ok", "CAPACITY_BELOW_USAGE"}, switched
            assert switched["ok"] >= 12, switched
            return Counter()
        rnd, outcomes, mine = random.Random(i), Counter(), []
        while not stop.is_set():
            outcome, row = call(conn, CLAIM, ("FLIP", f"h{i}-{rnd.random()}", "advisory"))
            outcomes[outcome] += 1
            if outcome == "ok":
                mine.append(row[0])
                with progress:
                    claimed["ok"] += 1
                    progress.notify_all()
            if mine and rnd.random() < 0.5:
                assert call(conn, "SELECT capacity.release(%s)", (mine.pop(),))[0] == "ok"
        return outcomes

    total = sum(run_concurrently(db, 24, work), Counter())
    assert set(total) <= {"ok", "CODE_FULL"}, total  # (the switcher saw claims land throughout)
    audit(db)  # usage = active claims, slots = their claims, base + caps = max_uses


def test_revoke_and_expiry_end_slotted_claims(db):
    reset(
        db,
        [
            {"code": "GONE", "max_uses": 30, "slots": 4},
            {"code": "IDLE", "max_uses": 30, "slots": 4},
        ],
    )
    with psycopg.connect(db, autocommit=True) as conn:
        for i in range(12):
            conn.execute(CLAIM, ("GONE", f"h{i}", "wait"))
            conn.execute(CLAIM, ("IDLE", f"h{i}", "wait"))
        assert conn.execute("SELECT revoked FROM capacity.revoke_code('GONE')").fetchone() == (12,)
        assert [used for _, used, _ in slots_of(conn, "GONE")] == [0, 0, 0, 0]
        conn.execute("UPDATE capacity.claims SET last_seen_at = now() - interval '2 hours'")
        assert conn.execute(
            "SELECT expired FROM capacity.expire_idle_claims('1 hour')"
        ).fetchone() == (12,)
        assert [used for _, used, _ in slots_of(conn, "IDLE")] == [0, 0, 0, 0]
        assert sum(cap for _, _, cap in slots_of(conn, "IDLE")) == 30
    assert audit(db)["usage"] == 0


def test_reconcile_repairs_a_slotted_code(db):
    reset(db, [{"code": "DRIFT", "max_uses": 10, "slots": 2}])
    with psycopg.connect(db, autocommit=True) as conn:
        for i in range(4):
            conn.execute(CLAIM, ("DRIFT", f"h{i}", "wait"))
        conn.execute(
            "UPDATE capacity.code_slots SET used = 0, cap = 5 WHERE code_id ="
            " (SELECT code_id FROM capacity.codes WHERE code = 'DRIFT')"
        )
        assert conn.execute(
            "SELECT usage_count, active_claims, drift FROM capacity.reconcile()"
        ).fetchall() == [(0, 4, -4)]
        conn.execute("SELECT * FROM capacity.reconcile(true)")
        assert conn.execute("SELECT count(*) FROM capacity.reconcile()").fetchone() == (0,)
    assert audit(db)["usage"] == 4


def test_tune_slots_spreads_only_hot_codes_and_keeps_counts(db):
    reset(db, [{"code": "BUSY", "max_uses": 100}, {"code": "CALM", "max_uses": 100}])
    with psycopg.connect(db, autocommit=True) as conn:
        busy = [conn.execute(CLAIM, ("BUSY", f"h{i}", "wait")).fetchone()[0] for i in range(30)]
        conn.execute(CLAIM, ("CALM", "h", "wait"))
        assert conn.execute("SELECT * FROM capacity.tune_slots(20, 8)").fetchall() == [("BUSY", 8)]
        assert conn.execute("SELECT * FROM capacity.tune_slots(20, 8)").fetchall() == []  # done
        assert sum(cap for _, _, cap in slots_of(conn, "BUSY")) == 70  # the 30 stay in the base
        for claim_id in busy[:10]:  # claims from before the switch give their unit back
            conn.execute("SELECT capacity.release(%s)", (claim_id,))
        for i in range(80):
            conn.execute(CLAIM, ("BUSY", f"new-{i}", "nowait"))
        assert call(conn, CLAIM, ("BUSY", "one-too-many", "wait"))[0] == "CODE_FULL"
        assert slots_of(conn, "CALM") == []
    assert audit(db)["usage"] == 101
