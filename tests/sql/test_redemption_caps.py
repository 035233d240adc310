"""Redemption caps under races: a code with max_total_claims = 100 raced by 1 000 holders
admits exactly 100 claims, ever, whether the claims are released at once or kept, and
whichever limit refuses a claim first."""

from __future__ import annotations

import threading
from collections import Counter

import psycopg
import pytest

from tests.support import LOCK_MODES, audit, call, reset, run_concurrently

CLAIM = "SELECT claim_id, already_held FROM capacity.claim(%s, %s, %s)"
RELEASE = "SELECT released FROM capacity.release(%s::bigint)"


def claim(conn, code: str, holder: str, mode: str):
    while True:  # LOCK_CONTENDED means "retry"
        outcome, row = call(conn, CLAIM, (code, holder, mode))
        if outcome != "LOCK_CONTENDED":
            return outcome, row


def admitted(db: str, code: str) -> tuple[int, int]:
    """(total_claims on the code row, claims recorded for the code)."""
    with psycopg.connect(db) as conn:
        return conn.execute(
            "SELECT c.total_claims, (SELECT count(*) FROM capacity.claims AS k WHERE k.code_id = c.code_id)"
            "  FROM capacity.codes AS c WHERE c.code = %s",
            (code,),
        ).fetchone()


@pytest.mark.parametrize("max_uses", [1000, 10], ids=["cap-binds", "both-bind"])
@pytest.mark.parametrize("mode", LOCK_MODES)
def test_1000_holders_race_for_100_redemptions(db, mode, max_uses):
    """With max_uses 1000 only the cap refuses; with max_uses 10 and every claim released
    at once, CODE_FULL refuses claims on the way (the holder tries again) and the cap
    still ends at 100."""
    reset(db, [{"code": "PROMO", "max_uses": max_uses, "max_total_claims": 100}])
    holders = iter(range(1000))
    take = threading.Lock()

    def work(i, conn):
        seen = Counter()
        while True:
            with take:
                h = next(holders, None)
            if h is None:
                return seen
            outcome, row = claim(conn, "PROMO", f"user-{h}", mode)
            while outcome == "CODE_FULL":
                seen["full, tried again"] += 1
                outcome, row = claim(conn, "PROMO", f"user-{h}", mode)
            seen[outcome] += 1
            if outcome == "ok" and max_uses == 10:
                assert call(conn, RELEASE, (row[0],)) == ("ok", (True,))

    seen = sum(run_concurrently(db, 64, work), Counter())

    assert (seen["ok"], seen["CODE_EXHAUSTED"]) == (100, 900)
    assert set(seen) <= {"ok", "CODE_EXHAUSTED", "full, tried again"}
    assert admitted(db, "PROMO") == (100, 100)
    assert audit(db)["usage"] == (100 if max_uses == 1000 else 0)


@pytest.mark.parametrize("mode", LOCK_MODES)
def test_one_holder_racing_itself_spends_one_redemption(db, mode):
    reset(db, [{"code": "ONCE", "max_uses": 5, "max_total_claims": 2}])

    results = run_concurrently(db, 16, lambda i, conn: claim(conn, "ONCE", "same", mode))

    assert {outcome for outcome, _ in results} == {"ok"}
    assert len({row[0] for _, row in results}) == 1
    assert sorted(row[1] for _, row in results) == [False] + [True] * 15
    assert admitted(db, "ONCE") == (1, 1)
    assert audit(db)["usage"] == 1
