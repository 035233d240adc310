"""Fair waiting with real connections: waiters queued in a known order on a full code get
its units in that order, a waiter that gives up or disconnects leaves the queue, and
waiting claims never oversell."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import threading
from collections import Counter

import psycopg
import pytest

from tests.support import LOCK_MODES, audit, call, reset, run_concurrently, wait_for

WAIT = "SELECT claim_id FROM capacity.claim_wait(%s, %s, %s::interval, %s)"
RELEASE = "SELECT released FROM capacity.release(%s::bigint)"
# Waiters in claim_wait()'s queue for a code: its advisory lock (granted to the head).
QUEUED = """
SELECT count(*) FROM pg_locks
 WHERE locktype = 'advisory' AND classid = 1885823859
   AND objid = (SELECT code_id FROM capacity.codes WHERE code = %s) AND objsubid = 2"""


class Waiter(threading.Thread):
    """One connection calling claim_wait() once; puts (name, outcome, claim id) on `done`."""

    def __init__(self, db: str, name: str, done: queue.Queue, wait: str = "60 s", mode="advisory"):
        super().__init__(daemon=True)
        self.conn = psycopg.connect(db, autocommit=True)
        self.args, self.done, self.name = ("Q", name, wait, mode), done, name

    def run(self) -> None:
        with self.conn:
            outcome, row = call(self.conn, WAIT, self.args)
            self.done.put((self.name, outcome, row and row[0]))


def queued(conn: psycopg.Connection) -> int:
    return conn.execute(QUEUED, ("Q",)).fetchone()[0]


def full_code(db: str, conn: psycopg.Connection) -> int:
    """Code Q with its one unit held; returns that claim's id."""
    reset(db, [{"code": "Q", "max_uses": 1}])
    return conn.execute("SELECT claim_id FROM capacity.claim('Q', 'first')").fetchone()[0]


def enqueue(db: str, conn: psycopg.Connection, done: queue.Queue, name: str, **kw) -> Waiter:
    """Starts a waiter and returns once it is in the queue, behind every earlier one."""
    before = queued(conn)
    waiter = Waiter(db, name, done, **kw)
    waiter.start()
    assert wait_for(lambda: queued(conn) == before + 1), f"{name} never queued"
    return waiter


@pytest.mark.parametrize("mode", LOCK_MODES)
def test_20_waiters_get_units_in_the_order_they_came(db, mode):
    done: queue.Queue = queue.Queue()
    with psycopg.connect(db, autocommit=True) as conn:
        held = full_code(db, conn)
        waiters = [enqueue(db, conn, done, f"w{i:02d}", mode=mode) for i in range(20)]
        served = []
        for _ in waiters:  # one unit at a time: each release serves exactly the next waiter
            assert conn.execute(RELEASE, (held,)).fetchone() == (True,)
            name, outcome, held = done.get(timeout=30)
            assert outcome == "ok", (name, outcome)
            served.append(name)
        assert conn.execute(RELEASE, (held,)).fetchone() == (True,)
        assert queued(conn) == 0
    assert served == [w.name for w in waiters]
    audit(db)


def test_a_waiter_that_gives_up_leaves_the_queue(db):
    done: queue.Queue = queue.Queue()
    with psycopg.connect(db, autocommit=True) as conn:
        held = full_code(db, conn)
        enqueue(db, conn, done, "head")
        enqueue(db, conn, done, "impatient", wait="200 ms")
        enqueue(db, conn, done, "patient")
        assert done.get(timeout=30)[:2] == ("impatient", "CODE_FULL")
        assert wait_for(lambda: queued(conn) == 2)
        order = []
        for _ in range(2):
            assert conn.execute(RELEASE, (held,)).fetchone() == (True,)
            name, outcome, held = done.get(timeout=30)
            order.append((name, outcome))
        assert order == [("head", "ok"), ("patient", "ok")]
    audit(db)


def test_a_waiter_whose_client_disconnects_leaves_the_queue(db):
    """psql killed with SIGKILL while it waits: with client_connection_check_interval set,
    its backend notices the closed socket and gives its place up long before its wait
    ends, and claims nothing."""
    done: queue.Queue = queue.Queue()
    with psycopg.connect(db, autocommit=True) as conn:
        held = full_code(db, conn)
        enqueue(db, conn, done, "head")
        gone = subprocess.Popen(
            [
                "psql",
                "-X",
                "-q",
                "-d",
                db,
                "-c",
                "SELECT capacity.claim_wait('Q', 'gone', '10 min')",
            ],
            env=os.environ | {"PGOPTIONS": "-c client_connection_check_interval=200"},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        assert wait_for(lambda: queued(conn) == 2), "psql never queued"
        enqueue(db, conn, done, "after")
        gone.send_signal(signal.SIGKILL)
        gone.wait()
        assert wait_for(lambda: queued(conn) == 2), "the killed waiter kept its place"
        order = []
        for _ in range(2):
            assert conn.execute(RELEASE, (held,)).fetchone() == (True,)
            name, outcome, held = done.get(timeout=30)
            order.append((name, outcome))
        assert order == [("head", "ok"), ("after", "ok")]
        assert conn.execute(
            "SELECT count(*) FROM capacity.claims WHERE holder = 'gone'"
        ).fetchone() == (0,)
    audit(db)


@pytest.mark.parametrize("mode", LOCK_MODES)
def test_64_waiting_claimers_on_4_units_never_oversell(db, mode):
    """Each waits for a unit, holds it for one more statement, releases it: all 64 are
    served, one queue at a time, and the code never had more than 4 units in use."""
    reset(db, [{"code": "Q", "max_uses": 4}])

    def work(i, conn):
        outcome, row = call(conn, WAIT, ("Q", f"user-{i}", "120 s", mode))
        if outcome == "ok":
            assert call(conn, RELEASE, row) == ("ok", (True,))
        return outcome

    assert Counter(run_concurrently(db, 64, work)) == {"ok": 64}
    assert audit(db)["usage"] == 0
    with psycopg.connect(db) as conn:
        peak = conn.execute(
            "SELECT max(usage_after) FROM capacity.events WHERE kind = 'claimed'"
        ).fetchone()[0]
    assert 1 <= peak <= 4
