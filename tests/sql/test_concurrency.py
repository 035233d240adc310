"""The concurrency guarantees (docs/contract.md), each shown with many real connections racing.

Every test ends with an exact count and an invariant audit (tests/concurrency.py).
A LOCK_CONTENDED answer means "retry", so workers retry it; how often that
happened is asserted to be bounded where it matters, never silently ignored.
"""

from __future__ import annotations

import itertools
import random
import threading
from collections import Counter

import psycopg
import pytest

from tests.support import LOCK_MODES, audit, call, reset, run_concurrently

CLAIM = "SELECT claim_id, already_held, usage_count FROM capacity.claim(%s, %s, %s)"
# Every guarantee holds for plain codes and for slotted ones (capacity spread over rows).
SLOTS = pytest.mark.parametrize("slots", [0, 16], ids=["plain", "slotted"])


def claim_until_answered(
    conn: psycopg.Connection, code: str, holder: str, mode: str
) -> tuple[str, tuple | None, int]:
    """A claim retried while it answers LOCK_CONTENDED; returns (outcome, row, retries)."""
    for retries in itertools.count():
        outcome, row = call(conn, CLAIM, (code, holder, mode))
        if outcome != "LOCK_CONTENDED":
            return outcome, row, retries
    raise AssertionError("unreachable")


@SLOTS
@pytest.mark.parametrize("mode", LOCK_MODES)
def test_64_connections_race_for_400_units(db, mode, slots):
    reset(db, [{"code": "HOT", "max_uses": 400, "slots": slots}])
    holders = iter(range(1000))
    take = threading.Lock()

    def work(_, conn):
        outcomes, retries = Counter(), 0
        while True:
            with take:
                h = next(holders, None)
            if h is None:
                return outcomes, retries
            outcome, _, r = claim_until_answered(conn, "HOT", f"student-{h}", mode)
            outcomes[outcome] += 1
            retries += r

    results = run_concurrently(db, 64, work)
    total = sum((o for o, _ in results), Counter())
    assert total == Counter(ok=400, CODE_FULL=600)
    assert audit(db)["usage"] == 400


@SLOTS
@pytest.mark.parametrize("mode", LOCK_MODES)
def test_32_connections_claim_for_the_same_holder(db, mode, slots):
    reset(db, [{"code": "ONE", "max_uses": 100, "slots": slots}])

    def work(_, conn):
        return claim_until_answered(conn, "ONE", "the-same-user", mode)

    results = run_concurrently(db, 32, work)
    assert {outcome for outcome, _, _ in results} == {"ok"}
    claim_ids = {row[0] for _, row, _ in results}
    assert len(claim_ids) == 1, "everyone got the same claim"
    assert sorted(row[1] for _, row, _ in results) == [False] + [True] * 31, "exactly one new claim"
    assert audit(db)["usage"] == 1


@SLOTS
@pytest.mark.parametrize("mode", LOCK_MODES)
def test_holder_limit_3_with_20_codes_claimed_at_once(db, mode, slots):
    codes = [
        {"code": f"BILL-{i}", "max_uses": 1, "pool": "bills", "slots": slots} for i in range(20)
    ]
    reset(db, codes)
    with psycopg.connect(db, autocommit=True) as conn:
        conn.execute("SELECT capacity.set_holder_limit('bills', 'reviewer', 3)")

    def work(i, conn):
        return claim_until_answered(conn, f"BILL-{i}", "reviewer", mode)[0]

    outcomes = Counter(run_concurrently(db, 20, work))
    assert outcomes == Counter(ok=3, HOLDER_LIMIT_EXCEEDED=17)
    assert audit(db)["usage"] == 3


@SLOTS
def test_holder_limit_set_and_removed_while_the_holder_claims(db, slots):
    """A limited holder has a counter row, an unlimited one none (migration 0006). Setting
    or removing the limit while the holder's claims, releases and expiries are in flight
    must leave the counter equal to the active claims: no claim counted twice or missed."""
    reset(
        db,
        [{"code": f"DOC-{i}", "max_uses": 1000, "pool": "docs", "slots": slots} for i in range(30)],
    )
    limits = itertools.cycle([None, 100])  # 40 calls: ends with a limit

    def work(i, conn):
        rng = random.Random(i)
        outcomes = Counter()
        for _ in range(40):
            if i == 0:
                sql, args = "SELECT capacity.set_holder_limit('docs', 'team', %s)", (next(limits),)
            elif i == 1:
                sql, args = "SELECT expired FROM capacity.expire_idle_claims('0 seconds', 5)", None
            elif rng.random() < 0.6:
                sql, args = CLAIM, (f"DOC-{rng.randrange(30)}", "team", "advisory")
            else:
                sql, args = (
                    "SELECT released FROM capacity.release(%s, 'team')",
                    (f"DOC-{rng.randrange(30)}",),
                )
            outcomes[call(conn, sql, args)[0]] += 1
        return outcomes

    outcomes = sum(run_concurrently(db, 16, work), Counter())
    assert set(outcomes) == {"ok"}, outcomes  # e.g. no counter pushed below 0 (23514)
    audit(db)  # the last limit set stays: its counter equals the holder's active claims
    with psycopg.connect(db) as conn:
        assert conn.execute("SELECT max_claims FROM capacity.holders").fetchall() == [(100,)]


@SLOTS
def test_concurrent_double_release_returns_one_unit(db, slots):
    reset(db, [{"code": "REL", "max_uses": 100, "slots": slots}])
    with psycopg.connect(db, autocommit=True) as conn:
        ids = [conn.execute(CLAIM, ("REL", f"h{i}", "wait")).fetchone()[0] for i in range(60)]

    def work(i, conn):
        mine = ids[:]
        random.Random(i).shuffle(mine)
        released = 0
        for claim_id in mine:
            if i % 2:  # half release by id, half by (code, holder)
                outcome, row = call(conn, "SELECT released FROM capacity.release(%s)", (claim_id,))
            else:
                outcome, row = call(
                    conn,
                    "SELECT released FROM capacity.release('REL', 'h' || %s)",
                    (ids.index(claim_id),),
                )
            assert outcome == "ok", outcome
            released += row[0]
        return released

    assert sum(run_concurrently(db, 32, work)) == 60, "each claim released exactly once"
    assert audit(db)["usage"] == 0
    with psycopg.connect(db) as conn:
        assert (
            conn.execute("SELECT count(*) FROM capacity.events WHERE kind = 'released'").fetchone()[
                0
            ]
            == 60
        )


@SLOTS
def test_expiry_during_heartbeats_and_claims(db, slots):
    """Nothing live is expired, nothing is expired twice, counts stay exact."""
    reset(db, [{"code": f"ROOM-{i}", "max_uses": 1000, "slots": slots} for i in range(20)])
    with psycopg.connect(db, autocommit=True) as conn:
        stale = [
            r[0]
            for r in conn.execute(
                "SELECT (capacity.claim('ROOM-' || (i % 20), 'old-' || i)).claim_id FROM generate_series(0, 1999) i"
            ).fetchall()
        ]
        conn.execute("UPDATE capacity.claims SET last_seen_at = now() - interval '2 hours'")
    heartbeaten: set[int] = set()
    fresh: list[int] = []
    expired_total = 0
    guard = threading.Lock()

    def work(i, conn):
        nonlocal expired_total
        rnd = random.Random(i)
        if i == 0:  # the expiry runner, in small batches, until nothing is left
            while True:
                expired, _, _, more = conn.execute(
                    "SELECT * FROM capacity.expire_idle_claims('1 hour', 50)"
                ).fetchone()
                with guard:
                    expired_total += expired
                if not more:
                    return
        for n in range(150):
            if i % 2:  # heartbeat stale claims: each one either survives or was already gone
                claim_id = rnd.choice(stale)
                outcome, _ = call(conn, "SELECT capacity.heartbeat(%s)", (claim_id,))
                assert outcome in ("ok", "CLAIM_NOT_FOUND"), outcome
                if outcome == "ok":
                    with guard:
                        heartbeaten.add(claim_id)
            else:  # fresh claims and releases on the same codes
                outcome, row = call(
                    conn, CLAIM, (f"ROOM-{rnd.randrange(20)}", f"new-{i}-{n}", "advisory")
                )
                assert outcome == "ok", outcome
                with guard:
                    fresh.append(row[0])
        return None

    run_concurrently(db, 16, work)
    with psycopg.connect(db, autocommit=True) as conn:
        expired_total += conn.execute(
            "SELECT expired FROM capacity.expire_idle_claims('1 hour', 100000)"
        ).fetchone()[0]
        expired = {
            r[0]
            for r in conn.execute(
                "SELECT claim_id FROM capacity.claims WHERE end_reason = 'expired'"
            ).fetchall()
        }
        twice = conn.execute("""SELECT claim_id FROM capacity.events WHERE kind = 'expired'
                                GROUP BY claim_id HAVING count(*) > 1""").fetchall()
    assert heartbeaten, "the test must exercise heartbeats on idle claims"
    assert not heartbeaten & expired, "a claim that answered a heartbeat was expired afterwards"
    assert not set(fresh) & expired, "a fresh claim was expired"
    assert expired == set(stale) - heartbeaten, "every idle claim without a heartbeat expired"
    assert expired_total == len(expired), "the functions' counts match the rows"
    assert twice == []
    assert audit(db)["usage"] == len(heartbeaten) + len(fresh)


def test_expiry_passes_over_busy_codes(db):
    """Expiry never waits for a busy code: the idle claims on it neither use up the batch
    nor count as pending, so a caller looping on more_pending cannot spin on them."""
    reset(db, [{"code": code, "max_uses": 10} for code in ("BUSY", "FREE")])
    with psycopg.connect(db, autocommit=True) as conn, psycopg.connect(db) as other:
        conn.execute(
            "SELECT capacity.claim(code, holder) FROM (VALUES ('BUSY', 'a1'), ('BUSY', 'a2'),"
            " ('FREE', 'b1'), ('FREE', 'b2')) AS v(code, holder)"
        )
        # The two BUSY claims are the oldest idle ones.
        conn.execute(
            "UPDATE capacity.claims SET last_seen_at = now() - interval '3 hours'"
            " WHERE holder IN ('a1', 'a2')"
        )
        conn.execute(
            "UPDATE capacity.claims SET last_seen_at = now() - interval '2 hours'"
            " WHERE holder IN ('b1', 'b2')"
        )
        other.execute("SELECT 1 FROM capacity.codes WHERE code = 'BUSY' FOR UPDATE")
        expire = "SELECT expired, more_pending FROM capacity.expire_idle_claims('1 hour', %s)"
        assert conn.execute(expire, (1,)).fetchone() == (1, True)  # b1; b2 is next
        assert conn.execute(expire, (1,)).fetchone() == (1, False)  # b2; BUSY's wait
        assert conn.execute(expire, (1,)).fetchone() == (0, False)
        other.rollback()
        assert conn.execute(expire, (1,)).fetchone() == (1, True)
        assert conn.execute(expire, (10,)).fetchone() == (1, False)
    audit(db)


@SLOTS
def test_one_holder_claims_and_releases_one_code_from_16_connections(db, slots):
    """A claim that meets the same holder's claim committed just before it returns that
    claim (already_held); if that claim ended meanwhile, it claims anew: never an error."""
    reset(db, [{"code": "SAME", "max_uses": 100, "slots": slots}])

    def work(i, conn):
        outcomes = Counter()
        for _ in range(150):
            outcomes[call(conn, CLAIM, ("SAME", "one-holder", "advisory"))[0]] += 1
            outcomes[call(conn, "SELECT capacity.release('SAME', 'one-holder')")[0]] += 1
        return outcomes

    outcomes = sum(run_concurrently(db, 16, work), Counter())
    assert set(outcomes) == {"ok"}, outcomes
    assert audit(db)["usage"] in (0, 1)
