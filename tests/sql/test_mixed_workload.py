"""A mixed random workload on 32 connections: no deadlock, exact counts, zero drift.

Claims in every lock mode, releases by id and by (code, holder), heartbeats, expiry,
revokes, upserts that raise and lower capacity, and holder-limit changes all race on
a few small codes for PGCAPACITY_SOAK_SECONDS (default 20), and on a slow machine for as
long as it takes to make MIN_CLAIMS successful claims: the test measures nothing about
speed. Every outcome must be a success or a documented refusal; a deadlock or any other
error fails the test.
"""

from __future__ import annotations

import json
import os
import random
import threading
import time
from collections import Counter

import psycopg

from tests.support import LOCK_MODES, audit, call, reset, run_concurrently

SECONDS = float(os.environ.get("PGCAPACITY_SOAK_SECONDS", "20"))
MIN_CLAIMS = 1000  # the workload must really run, however slow the machine
CODES = [f"MIX-{i}" for i in range(8)]
POOLS = ["default", "bills"]
HOLDERS = [f"user-{i}" for i in range(60)]

# What each operation may legitimately answer besides "ok".
ALLOWED = {
    "claim": {"CODE_FULL", "CODE_INACTIVE", "HOLDER_LIMIT_EXCEEDED", "LOCK_CONTENDED"},
    "release_id": {"CLAIM_NOT_FOUND"},
    "release_holder": set(),
    "heartbeat": {"CLAIM_NOT_FOUND"},
    "expire": set(),
    "upsert": {"CAPACITY_BELOW_USAGE"},
    "limit": {"CAPACITY_BELOW_USAGE"},
    "revoke": set(),
}


def test_mixed_random_workload(db):
    reset(db, [{"code": c, "max_uses": 10, "pool": POOLS[i % 2]} for i, c in enumerate(CODES)])
    deadline = time.monotonic() + SECONDS
    tally: Counter = Counter()
    units = Counter()  # what the callers observed: new claims, releases, expiries, revokes
    guard = threading.Lock()
    claims_made = 0  # successful claims so far, all workers (under guard)

    def running() -> bool:
        if time.monotonic() < deadline:
            return True
        with guard:
            return claims_made < MIN_CLAIMS

    def work(i, conn):
        nonlocal claims_made
        rnd = random.Random(i)
        mine: list[int] = []
        local, seen = Counter(), Counter()
        while running():
            op = rnd.choices(list(ALLOWED), weights=[40, 15, 10, 15, 3, 4, 4, 1])[0]
            code, holder = rnd.choice(CODES), rnd.choice(HOLDERS)
            if op == "claim":
                outcome, row = call(
                    conn,
                    "SELECT claim_id, already_held FROM capacity.claim(%s, %s, %s)",
                    (code, holder, rnd.choice(LOCK_MODES)),
                )
                if outcome == "ok":
                    mine.append(row[0])
                    seen["claimed"] += not row[1]
                    with guard:
                        claims_made += 1
            elif op == "release_id" and mine:
                outcome, row = call(
                    conn,
                    "SELECT released FROM capacity.release(%s)",
                    (mine.pop(rnd.randrange(len(mine))),),
                )
                seen["released"] += bool(row and row[0])
            elif op == "release_holder":
                outcome, row = call(
                    conn, "SELECT released FROM capacity.release(%s, %s)", (code, holder)
                )
                seen["released"] += bool(row and row[0])
            elif op == "heartbeat" and mine:
                outcome, _ = call(conn, "SELECT capacity.heartbeat(%s)", (rnd.choice(mine),))
            elif op == "expire":
                outcome, row = call(
                    conn, "SELECT expired FROM capacity.expire_idle_claims('50 milliseconds', 200)"
                )
                seen["expired"] += row[0] if row else 0
            elif op == "upsert":
                spec = [{"code": code, "max_uses": rnd.randint(0, 14), "is_active": True}]
                outcome, _ = call(
                    conn, "SELECT capacity.upsert_codes(%s::jsonb)", (json.dumps(spec),)
                )
            elif op == "limit":
                outcome, _ = call(
                    conn,
                    "SELECT capacity.set_holder_limit(%s, %s, %s)",
                    (rnd.choice(POOLS), holder, rnd.choice([None, 1, 2, 3])),
                )
            elif op == "revoke":
                outcome, row = call(conn, "SELECT revoked FROM capacity.revoke_code(%s)", (code,))
                seen["revoked"] += row[0] if row else 0
            else:
                continue
            assert outcome == "ok" or outcome in ALLOWED[op], f"{op} answered {outcome}"
            local[(op, outcome)] += 1
        with guard:
            tally.update(local)
            units.update(seen)

    # (a run that cannot reach MIN_CLAIMS within ten minutes more is stuck, not slow)
    run_concurrently(db, 32, work, timeout=SECONDS + 600)

    assert not any(outcome == "40P01" for _, outcome in tally), "deadlock detected"
    assert tally[("claim", "ok")] >= MIN_CLAIMS, tally
    assert tally[("claim", "CODE_FULL")] > 0 and tally[("expire", "ok")] > 0, tally
    usage = audit(db)["usage"]
    assert usage == units["claimed"] - units["released"] - units["expired"] - units["revoked"], (
        units
    )
    with psycopg.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM capacity.reconcile()").fetchone()[0] == 0
