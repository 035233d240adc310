"""claim() runs in the caller's transaction: it commits or rolls back with the caller."""

from __future__ import annotations

from contextlib import contextmanager

import psycopg
import pytest

from tests.support import reset


@contextmanager
def raises_sqlstate(sqlstate: str, match: str | None = None):
    with pytest.raises(psycopg.Error, match=match) as info:
        yield info
    assert info.value.sqlstate == sqlstate, info.value


@pytest.fixture(autouse=True)
def code(db):
    reset(db, [{"code": "TXN", "max_uses": 2}])
    with psycopg.connect(db, autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS public.enrolments (holder text PRIMARY KEY)")
        conn.execute("TRUNCATE public.enrolments")


def usage(db) -> int:
    with psycopg.connect(db) as conn:
        return conn.execute("SELECT usage_count FROM capacity.codes WHERE code = 'TXN'").fetchone()[
            0
        ]


def test_rollback_undoes_the_claim_and_the_callers_write(db):
    with psycopg.connect(db) as conn:
        conn.execute("SELECT capacity.claim('TXN', 'alice')")
        conn.execute("INSERT INTO public.enrolments VALUES ('alice')")
        conn.rollback()
    assert usage(db) == 0
    with psycopg.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM capacity.events").fetchone()[0] == 0


def test_commit_keeps_both(db):
    with psycopg.connect(db) as conn:
        conn.execute("SELECT capacity.claim('TXN', 'alice')")
        conn.execute("INSERT INTO public.enrolments VALUES ('alice')")
        conn.commit()
    assert usage(db) == 1


def test_a_failed_claim_in_a_savepoint_keeps_the_rest_of_the_transaction(db):
    with psycopg.connect(db) as conn:
        conn.execute("SELECT capacity.claim('TXN', 'a'), capacity.claim('TXN', 'b')")
        with raises_sqlstate("CP005"), conn.transaction():
            conn.execute("SELECT capacity.claim('TXN', 'c')")
        conn.execute("INSERT INTO public.enrolments VALUES ('a'), ('b')")
        conn.commit()
    assert usage(db) == 2


def test_an_open_claim_transaction_makes_others_wait_bounded_by_lock_timeout(db):
    """Until the caller commits, its claim holds the code: others wait, up to lock_timeout."""
    with psycopg.connect(db) as first, psycopg.connect(db, autocommit=True) as second:
        first.execute("SELECT capacity.claim('TXN', 'a')")
        second.execute("SET lock_timeout = '200ms'")
        for mode in ("wait", "advisory"):
            with pytest.raises(psycopg.errors.LockNotAvailable):
                second.execute("SELECT capacity.claim('TXN', 'b', %s)", (mode,))
        first.commit()
        assert second.execute("SELECT usage_count FROM capacity.claim('TXN', 'b')").fetchone() == (
            2,
        )
        with raises_sqlstate("CP005"):
            second.execute("SELECT capacity.claim('TXN', 'c', 'wait')")
    assert usage(db) == 2


def test_nowait_gives_up_with_lock_contended_while_a_transaction_holds_the_code(db):
    with psycopg.connect(db) as holder, psycopg.connect(db, autocommit=True) as other:
        holder.execute("SELECT capacity.claim('TXN', 'a')")
        other.execute("SET pgcapacity.nowait_attempts = 3")
        with raises_sqlstate("CP008", match="LOCK_CONTENDED: code TXN stayed locked after 3"):
            other.execute("SELECT capacity.claim('TXN', 'b', 'nowait')")
        holder.rollback()
        assert other.execute(
            "SELECT usage_count FROM capacity.claim('TXN', 'b', 'nowait')"
        ).fetchone() == (1,)
