"""Multi-unit claims under races: many real connections claiming 1-4 units of one code at
once, plain and slotted, never oversell it, and its usage is always the sum of its active
claims' units (the audit checks every counter and the event log)."""

from __future__ import annotations

import random
import threading
from collections import Counter

import pytest

from tests.support import LOCK_MODES, audit, call, reset, run_concurrently

CLAIM = "SELECT claim_id, units FROM capacity.claim(%s, %s, %s, %s)"
RELEASE = "SELECT released FROM capacity.release(%s::bigint)"
SLOTS = pytest.mark.parametrize("slots", [0, 16], ids=["plain", "slotted"])


def claim(conn, code: str, holder: str, mode: str, units: int):
    while True:  # LOCK_CONTENDED means "retry"
        outcome, row = call(conn, CLAIM, (code, holder, mode, units))
        if outcome != "LOCK_CONTENDED":
            return outcome, row


@SLOTS
@pytest.mark.parametrize("mode", LOCK_MODES)
def test_64_connections_claim_1_to_4_units_of_100(db, mode, slots):
    reset(db, [{"code": "GROUPS", "max_uses": 100, "slots": slots}])
    holders = iter(range(400))
    take = threading.Lock()

    def work(i, conn):
        rng = random.Random(i)
        granted, refused = [], Counter()
        while True:
            with take:
                h = next(holders, None)
            if h is None:
                return granted, refused
            units = rng.randint(1, 4)
            outcome, row = claim(conn, "GROUPS", f"group-{h}", mode, units)
            if outcome == "ok":
                assert row[1] == units
                granted.append(units)
            else:
                refused[(outcome, units)] += 1

    results = run_concurrently(db, 64, work)
    granted = sum(sum(g) for g, _ in results)
    refused = sum((r for _, r in results), Counter())
    assert {outcome for outcome, _ in refused} == {"CODE_FULL"}
    assert granted <= 100 and audit(db)["usage"] == granted
    # Nothing is released, so a one-unit claim refused means the code was full for good.
    assert refused[("CODE_FULL", 1)] > 0 and granted == 100


@SLOTS
@pytest.mark.parametrize("mode", LOCK_MODES)
def test_claims_and_releases_of_many_units_keep_every_counter(db, mode, slots):
    """Near capacity, with releases freeing units in the middle of the race: a claim may
    take its units from one slot or across the slots, and every release gives back
    exactly what its claim took."""
    reset(db, [{"code": "NEAR", "max_uses": 24, "slots": slots}])

    def work(i, conn):
        rng = random.Random(1000 + i)
        kept = 0  # units of the claims this worker still holds at the end
        for round_ in range(12):
            units = rng.randint(1, 4)
            outcome, row = claim(conn, "NEAR", f"w{i}-{round_}", mode, units)
            if outcome == "ok":
                if rng.random() < 0.7:
                    assert call(conn, RELEASE, (row[0],)) == ("ok", (True,))
                else:
                    kept += units
            else:
                assert outcome == "CODE_FULL", outcome
        return kept

    kept = sum(run_concurrently(db, 64, work))
    assert 0 < kept <= 24 and audit(db)["usage"] == kept
