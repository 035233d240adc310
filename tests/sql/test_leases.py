"""Leases under races: a code full of claims past their lease admits new claimers at once,
ending exactly as many lapsed claims as it needs; heartbeats and releases of the lapsed
claims, racing those claimers and the expiry function, never bring one back."""

from __future__ import annotations

from collections import Counter

import psycopg
import pytest

from tests.support import LOCK_MODES, audit, call, reset, run_concurrently

SLOTS = pytest.mark.parametrize("slots", [0, 8], ids=["plain", "slotted"])
CLAIM = "SELECT claim_id, already_held FROM capacity.claim(%s, %s, %s)"


def claim(conn, code: str, holder: str, mode: str):
    while True:  # LOCK_CONTENDED means "retry"
        outcome, row = call(conn, CLAIM, (code, holder, mode))
        if outcome != "LOCK_CONTENDED":
            return outcome, row


def fill_with_lapsed_claims(db: str, code: str, n: int, holder: str = "old-{}") -> list[int]:
    """n claims of one unit with a lease, then every lease moved into the past."""
    with psycopg.connect(db, autocommit=True) as conn:
        ids = [
            conn.execute(
                "SELECT claim_id FROM capacity.claim(%s, %s, lease => '1 hour')",
                (code, holder.format(i)),
            ).fetchone()[0]
            for i in range(n)
        ]
        conn.execute(
            "UPDATE capacity.claims SET lease_expires_at = now() - interval '1 second'"
            " WHERE released_at IS NULL"
        )
    return ids


def ended(db: str, ids: list[int]) -> Counter:
    """How the given claims ended (None: still active)."""
    with psycopg.connect(db) as conn:
        rows = conn.execute(
            "SELECT end_reason::text FROM capacity.claims WHERE claim_id = ANY (%s)", (ids,)
        ).fetchall()
    return Counter(reason for (reason,) in rows)


@SLOTS
@pytest.mark.parametrize("mode", LOCK_MODES)
def test_a_code_full_of_lapsed_claims_admits_new_claimers_at_once(db, mode, slots):
    reset(db, [{"code": "LAPSED", "max_uses": 24, "slots": slots}])
    old = fill_with_lapsed_claims(db, "LAPSED", 24)

    outcomes = run_concurrently(db, 48, lambda i, conn: claim(conn, "LAPSED", f"new-{i}", mode)[0])

    assert Counter(outcomes) == {"ok": 24, "CODE_FULL": 24}
    assert ended(db, old) == {"expired": 24}
    assert audit(db)["usage"] == 24


@SLOTS
@pytest.mark.parametrize("mode", LOCK_MODES)
def test_nothing_resurrects_a_lapsed_claim(db, mode, slots):
    """Holders of lapsed claims heartbeat and release them while new claimers and the
    expiry function end them: every heartbeat is CLAIM_NOT_FOUND, every release
    released = false, and the new claimers get exactly the units the lapsed claims held.
    (A claimer skips lapsed claims that a release is ending right now, so it may be
    refused while that release commits: a second round of claimers takes what is left.)"""
    reset(db, [{"code": "RACE", "max_uses": 16, "slots": slots}])
    old = fill_with_lapsed_claims(db, "RACE", 16)
    heartbeat = "SELECT capacity.heartbeat(%s::bigint)"
    release = "SELECT released FROM capacity.release(%s::bigint)"

    def work(i, conn):
        if i < 16:  # the crashed holder comes back
            return call(conn, heartbeat, (old[i],))[0], call(conn, release, (old[i],))
        if i == 16:
            return "expiry", call(conn, "SELECT expired FROM capacity.expire_idle_claims('1 day')")[
                0
            ]
        return "claim", claim(conn, "RACE", f"new-{i}", mode)[0]

    results = run_concurrently(db, 41, work)

    assert Counter(r for r in results[:16]) == {("CLAIM_NOT_FOUND", ("ok", (False,))): 16}
    assert results[16] == ("expiry", "ok")
    first = Counter(outcome for _, outcome in results[17:])
    assert set(first) <= {"ok", "CODE_FULL"} and audit(db)["usage"] == first["ok"]
    assert ended(db, old) == {"expired": 16}
    second = run_concurrently(db, 24, lambda i, conn: claim(conn, "RACE", f"late-{i}", mode)[0])
    assert first["ok"] + Counter(second)["ok"] == 16
    assert audit(db)["usage"] == 16
    with psycopg.connect(db) as conn:
        assert conn.execute(
            "SELECT count(*) FROM capacity.claims WHERE holder LIKE 'old-%' AND released_at IS NULL"
        ).fetchone() == (0,)


@pytest.mark.parametrize("mode", LOCK_MODES)
def test_one_holder_reclaiming_after_its_lease_lapsed_gets_one_new_claim(db, mode):
    reset(db, [{"code": "AGAIN", "max_uses": 1}])
    (old,) = fill_with_lapsed_claims(db, "AGAIN", 1, holder="same")

    results = run_concurrently(db, 16, lambda i, conn: claim(conn, "AGAIN", "same", mode))

    assert {outcome for outcome, _ in results} == {"ok"}
    new_ids = {row[0] for _, row in results}
    assert len(new_ids) == 1 and old not in new_ids
    assert sorted(row[1] for _, row in results) == [False] + [True] * 15
    assert ended(db, [old]) == {"expired": 1}
    assert audit(db)["usage"] == 1
