"""Fencing under races: a claim held by assert_held in an open transaction is not ended by
idle expiry, lease expiry or a claimer needing its room until that transaction ends, and a
write guarded by assert_held never lands after its claim was released."""

from __future__ import annotations

import threading
from collections import Counter

import psycopg
import pytest

from tests.support import audit, call, reset, run_concurrently, wait_for


def waiting_on_a_lock(db: str, pid: int) -> bool:
    with psycopg.connect(db) as conn:
        row = conn.execute(
            "SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", (pid,)
        ).fetchone()
    return row == ("Lock",)


def held_with_a_lease_about_to_lapse(db: str, fencer: psycopg.Connection) -> int:
    """A claim with a lease, locked by assert_held in fencer's open transaction, then
    past its lease. The lease ends moments after assert_held: a slow moment in between
    makes assert_held refuse, and the set-up is tried again with a longer margin."""
    with psycopg.connect(db, autocommit=True) as conn:
        claim_id = conn.execute(
            "SELECT claim_id FROM capacity.claim('DOOR', 'zombie', lease => '1 hour')"
        ).fetchone()[0]
        for margin in (1, 2, 4, 8):
            conn.execute(
                "UPDATE capacity.claims SET lease_expires_at = clock_timestamp() + %s * interval '1 second'"
                " WHERE claim_id = %s",
                (margin, claim_id),
            )
            if call(fencer, "SELECT capacity.assert_held(%s)", (claim_id,))[0] == "ok":
                break
        else:
            pytest.fail("assert_held never ran within 8 s of the lease's end")
        lapsed = (
            "SELECT lease_expires_at < clock_timestamp() FROM capacity.claims WHERE claim_id = %s"
        )
        assert wait_for(lambda: conn.execute(lapsed, (claim_id,)).fetchone()[0], timeout=20)
    return claim_id


def test_a_fenced_claim_outlives_its_lease_until_the_transaction_ends(db):
    reset(db, [{"code": "DOOR", "max_uses": 1}])
    with (
        psycopg.connect(db) as fencer,
        psycopg.connect(db, autocommit=True) as other,
        psycopg.connect(db, autocommit=True) as releaser,
    ):
        claim_id = held_with_a_lease_about_to_lapse(db, fencer)

        # A claimer needing the room skips it, and so does the expiry function.
        assert call(other, "SELECT capacity.claim('DOOR', 'next')")[0] == "CODE_FULL"
        expired = "SELECT expired FROM capacity.expire_idle_claims('1 day')"
        assert call(other, expired) == ("ok", (0,))
        # A release waits for the fencing transaction.
        outcome = []
        release = threading.Thread(
            target=lambda: outcome.append(
                call(releaser, "SELECT released FROM capacity.release(%s::bigint)", (claim_id,))
            )
        )
        release.start()
        assert wait_for(lambda: waiting_on_a_lock(db, releaser.info.backend_pid))
        assert other.execute(
            "SELECT released_at FROM capacity.claims WHERE claim_id = %s", (claim_id,)
        ).fetchone() == (None,)
        fencer.commit()
        release.join(10)
        # Past its lease by then: it ends as expired, never as released.
        assert outcome == [("ok", (False,))]
        assert call(other, "SELECT capacity.claim('DOOR', 'next')")[0] == "ok"
    audit(db)


def test_idle_expiry_skips_a_fenced_claim(db):
    reset(db, [{"code": "IDLE", "max_uses": 1}])
    with psycopg.connect(db) as fencer, psycopg.connect(db, autocommit=True) as other:
        claim_id = other.execute("SELECT claim_id FROM capacity.claim('IDLE', 'slow')").fetchone()[
            0
        ]
        other.execute(
            "UPDATE capacity.claims SET last_seen_at = now() - interval '2 hours' WHERE claim_id = %s",
            (claim_id,),
        )
        assert fencer.execute("SELECT capacity.assert_held(%s)", (claim_id,)).fetchone() == (
            claim_id,
        )
        expire = "SELECT expired, more_pending FROM capacity.expire_idle_claims('1 hour')"
        assert other.execute(expire).fetchone() == (0, True)
        fencer.commit()
        assert other.execute(expire).fetchone() == (1, False)
    audit(db)


def test_a_write_guarded_by_assert_held_never_lands_after_the_release(db):
    """32 holders write under assert_held while 32 releasers end their claims: a releaser
    that won sees no write (the writer's assert_held failed), one that lost sees the write
    (it waited for the writer's commit). A write that committed after its release would
    show as a write no releaser saw."""
    reset(db, [{"code": "LEDGER", "max_uses": 32}])
    with psycopg.connect(db, autocommit=True) as conn:
        conn.execute("CREATE TABLE ledger (claim_id bigint)")
        conn.execute("CREATE TABLE seen_by_release (claim_id bigint, writes bigint)")
        ids = [
            conn.execute(
                "SELECT claim_id FROM capacity.claim('LEDGER', %s)", (f"h{i}",)
            ).fetchone()[0]
            for i in range(32)
        ]

    def work(i, conn):
        claim_id = ids[i % 32]
        if i < 32:  # the holder
            try:
                with conn.transaction():
                    conn.execute("SELECT capacity.assert_held(%s)", (claim_id,))
                    conn.execute("INSERT INTO ledger VALUES (%s)", (claim_id,))
                return "wrote"
            except psycopg.Error as err:
                assert err.sqlstate == "CP007", err  # CLAIM_NOT_FOUND: released first
                return "refused"
        with conn.transaction():
            conn.execute("SELECT capacity.release(%s::bigint)", (claim_id,))
            conn.execute(
                "INSERT INTO seen_by_release SELECT %s, count(*) FROM ledger WHERE claim_id = %s",
                (claim_id, claim_id),
            )
            return "released"

    outcomes = Counter(run_concurrently(db, 64, work))

    assert outcomes["released"] == 32 and outcomes["wrote"] + outcomes["refused"] == 32
    with psycopg.connect(db) as conn:
        mismatched = conn.execute(
            "SELECT s.claim_id, s.writes, (SELECT count(*) FROM ledger AS l WHERE l.claim_id = s.claim_id)"
            "  FROM seen_by_release AS s"
            " WHERE s.writes <> (SELECT count(*) FROM ledger AS l WHERE l.claim_id = s.claim_id)"
        ).fetchall()
        assert mismatched == []
        assert conn.execute("SELECT count(*) FROM ledger").fetchone() == (outcomes["wrote"],)
    assert audit(db)["usage"] == 0
