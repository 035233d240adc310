"""pgcapacity.client against the real database: typed results, one exception per error
name, claims held with background heartbeats, LOCK_CONTENDED retried."""

from __future__ import annotations

import threading
from datetime import timedelta

import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool, ConnectionPool

from pgcapacity.client import (
    AsyncCapacity,
    Capacity,
    CapacityError,
    Claim,
    ClaimNotFound,
    CodeExhausted,
    CodeFull,
    HolderLimitExceeded,
    LockContended,
    Retry,
    ValidationError,
)
from pgcapacity.client.errors import BY_SQLSTATE
from tests.support import audit, reset, wait_for


@pytest.fixture
def pool(db):
    reset(
        db,
        [
            {"code": "ONE", "max_uses": 1},
            {"code": "MANY", "max_uses": 50, "pool": "p"},
            {"code": "PROMO", "max_uses": 5, "max_total_claims": 1},
        ],
    )
    with ConnectionPool(db, min_size=1, max_size=4) as pool:
        yield pool


def last_seen(db: str, claim_id: int):
    with psycopg.connect(db) as conn:
        return conn.execute(
            "SELECT last_seen_at FROM capacity.claims WHERE claim_id = %s", (claim_id,)
        ).fetchone()[0]


def test_every_error_the_sql_raises_has_its_class(conn):
    rows = conn.execute(
        "SELECT name, sqlstate, aliases FROM capacity.error_codes() WHERE sqlstate <= 'CP009'"
        " OR name IN ('SERVICE_UNAVAILABLE', 'CODE_EXHAUSTED')"
    ).fetchall()
    assert len(rows) == 11
    for name, sqlstate, aliases in rows:
        for state in (sqlstate, *aliases):
            assert BY_SQLSTATE[state].name == name, state


def test_claim_release_check_and_refusals_as_types(pool, db):
    cap = Capacity(pool)
    claim = cap.claim("one", "ann")
    assert isinstance(claim, Claim) and (claim.code, claim.usage_count) == ("ONE", 1)
    assert cap.claim("ONE", "ann").claim_id == claim.claim_id  # already held
    with pytest.raises(CodeFull) as full:
        cap.claim("ONE", "bob")
    assert full.value.sqlstate == "CP005" and full.value.detail["max_uses"] == 1
    assert full.value.hint and isinstance(full.value, CapacityError)
    assert cap.check("ONE").reason == "CODE_FULL"
    assert [s.found for s in cap.usage(["ONE", "NOPE"])] == [True, False]
    assert cap.release(claim).released and not cap.release(claim).released
    with pytest.raises(ClaimNotFound):
        cap.heartbeat(claim)
    with psycopg.connect(db, autocommit=True) as conn:
        conn.execute("SELECT capacity.set_holder_limit('p', 'zed', 0)")
    with pytest.raises(HolderLimitExceeded):
        cap.claim("MANY", "zed")
    audit(db)


def test_a_claim_of_several_units(pool, db):
    cap = Capacity(pool)
    group = cap.claim("MANY", "group", units=48)
    assert (group.units, group.remaining) == (48, 2)
    assert cap.claim("MANY", "group", units=3).claim_id == group.claim_id  # already held
    with pytest.raises(CodeFull) as full:
        cap.claim("MANY", "other", units=3, lock_mode="nowait")
    assert full.value.detail["units"] == 3
    assert cap.release(group).remaining == 50
    assert audit(db)["usage"] == 0


def test_a_claim_with_a_lease(pool, db):
    cap = Capacity(pool)
    timed = cap.claim("MANY", "timed", lease=timedelta(minutes=5))
    assert timed.lease_expires_at - timed.claimed_at == timedelta(minutes=5)
    spelled = cap.claim("MANY", "spelled", lease="1 hour")
    assert spelled.lease_expires_at - spelled.claimed_at == timedelta(hours=1)
    assert cap.claim("MANY", "unleased").lease_expires_at is None
    with pytest.raises(ValidationError):
        cap.claim("MANY", "none", lease=timedelta(0))
    for claim in (timed, spelled):
        assert cap.release(claim).released
    cap.release_holder("MANY", "unleased")
    assert audit(db)["usage"] == 0


def test_a_code_with_a_redemption_cap(pool, db):
    cap = Capacity(pool)
    cap.release(cap.claim("PROMO", "first"))
    with pytest.raises(CodeExhausted) as spent:
        cap.claim("PROMO", "second")
    assert spent.value.detail["max_total_claims"] == 1
    status = cap.check("PROMO")
    assert (status.total_claims, status.remaining_total, status.reason) == (1, 0, "CODE_EXHAUSTED")
    assert cap.check("MANY").max_total_claims is None
    audit(db)


def test_assert_held_in_the_callers_transaction(pool, db):
    with psycopg.connect(db) as conn:
        cap = Capacity(conn)
        claim = cap.claim("MANY", "fenced")
        assert cap.assert_held(claim) == claim.fence == claim.claim_id
        assert cap.release(claim).released
        with pytest.raises(ClaimNotFound):
            cap.assert_held(claim)
    audit(db)


def test_a_held_claim_heartbeats_and_is_released_even_on_error(pool, db):
    cap = Capacity(pool, heartbeat_every=0.05)
    with pytest.raises(RuntimeError), cap.claim("MANY", "worker") as claim:
        first = last_seen(db, claim.claim_id)
        assert wait_for(lambda: last_seen(db, claim.claim_id) > first), "no heartbeat"
        raise RuntimeError("the work failed")
    assert not cap.release(claim).released  # the block's end released it already
    assert audit(db)["usage"] == 0


def test_one_connection_keeps_the_claim_in_the_callers_transaction(pool, db):
    with psycopg.connect(db) as conn:
        cap = Capacity(conn)
        cap.claim("MANY", "in-tx")
        conn.rollback()
    assert audit(db)["usage"] == 0  # rolled back with the caller's transaction


def test_lock_contended_is_retried_until_the_lock_is_gone(pool, db):
    retried = threading.Event()
    cap = Capacity(
        pool,
        lock_mode="nowait",
        retry=Retry(attempts=1000, base=0.01, cap=0.02),
        on_retry=lambda attempt, err: retried.set(),
    )
    with psycopg.connect(db) as blocker:
        blocker.execute("SELECT 1 FROM capacity.codes WHERE code = 'MANY' FOR UPDATE")
        with pytest.raises(LockContended):
            Capacity(pool, lock_mode="nowait", retry=Retry(attempts=2, base=0.001)).claim(
                "MANY", "gives-up"
            )
        result: list[Claim] = []
        worker = threading.Thread(target=lambda: result.append(cap.claim("MANY", "patient")))
        worker.start()
        assert retried.wait(30), "the client never retried"
        blocker.rollback()  # the lock goes: the next retry gets the unit
        worker.join(30)
    assert result and result[0].holder == "patient"
    assert audit(db)["usage"] == 1


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_the_async_client_claims_holds_and_releases(db, anyio_backend):
    reset(db, [{"code": "ASYNC", "max_uses": 1}])
    async with AsyncConnectionPool(db, min_size=1, max_size=2) as pool:
        cap = AsyncCapacity(pool, heartbeat_every=0.05)
        async with cap.claim("async", "ann") as claim:
            assert claim.usage_count == 1
            with pytest.raises(CodeFull):
                await cap.claim("ASYNC", "bob")
        assert (await cap.check("ASYNC")).usage_count == 0
        claim = await cap.claim("ASYNC", "bob", units=1)
        assert (await cap.release(claim)).released
        with pytest.raises(CodeFull):
            await cap.claim("ASYNC", "carol", units=2)
    assert audit(db)["usage"] == 0
