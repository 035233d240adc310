"""Property-based test: random operation sequences against a small Python model.

The model states the rules of docs/contract.md in a few lines; hypothesis drives the real
functions and the model side by side and compares every answer and every counter.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import psycopg
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from tests.support import LOCK_MODES, call

CODES = ["A", "B", "C"]
POOL_OF = {"A": "default", "B": "default", "C": "bills"}
HOLDERS = ["ann", "bob", "cy"]


@dataclass
class Code:
    max_uses: int
    active: bool = True


@dataclass
class Claim:
    code: str
    holder: str
    active: bool = True
    idle: bool = False


@dataclass
class Model:
    codes: dict[str, Code] = field(default_factory=dict)
    claims: dict[int, Claim] = field(default_factory=dict)
    limits: dict[tuple[str, str], int] = field(default_factory=dict)

    def usage(self, code: str) -> int:
        return sum(c.active and c.code == code for c in self.claims.values())

    def held(self, pool: str, holder: str) -> int:
        return sum(
            c.active and c.holder == holder and POOL_OF[c.code] == pool
            for c in self.claims.values()
        )

    def active_claim(self, code: str, holder: str) -> int | None:
        return next(
            (
                i
                for i, c in self.claims.items()
                if c.active and (c.code, c.holder) == (code, holder)
            ),
            None,
        )

    def claim_outcome(self, code: str, holder: str) -> str:
        if code not in self.codes:
            return "CODE_NOT_FOUND"
        if self.active_claim(code, holder) is not None:
            return "ok"
        if not self.codes[code].active:
            return "CODE_INACTIVE"
        if self.usage(code) >= self.codes[code].max_uses:
            return "CODE_FULL"
        limit = self.limits.get((POOL_OF[code], holder))
        if limit is not None and self.held(POOL_OF[code], holder) >= limit:
            return "HOLDER_LIMIT_EXCEEDED"
        return "ok"


class CapacityMachine(RuleBasedStateMachine):
    conninfo: str = ""

    def __init__(self):
        super().__init__()
        self.model = Model()
        self.conn = psycopg.connect(self.conninfo, autocommit=True)
        self.conn.execute(
            "TRUNCATE capacity.events, capacity.claims, capacity.holders, capacity.code_slots,"
            " capacity.codes"
        )

    def teardown(self):
        self.conn.close()

    @rule(
        code=st.sampled_from(CODES),
        max_uses=st.integers(0, 3),
        active=st.booleans(),
        slots=st.sampled_from([None, 0, 1, 2, 4]),  # never changes what callers see
    )
    def upsert(self, code, max_uses, active, slots):
        entry = {"code": code, "max_uses": max_uses, "is_active": active, "pool": POOL_OF[code]}
        spec = json.dumps([entry] if slots is None else [entry | {"slots": slots}])
        outcome, _ = call(self.conn, "SELECT * FROM capacity.upsert_codes(%s::jsonb)", (spec,))
        if code in self.model.codes and max_uses < self.model.usage(code):
            assert outcome == "CAPACITY_BELOW_USAGE"
        else:
            assert outcome == "ok"
            self.model.codes[code] = Code(max_uses, active)

    @rule(
        code=st.sampled_from(CODES),
        holder=st.sampled_from(HOLDERS),
        mode=st.sampled_from(LOCK_MODES),
    )
    def claim(self, code, holder, mode):
        expected = self.model.claim_outcome(code, holder)
        existing = self.model.active_claim(code, holder) if code in self.model.codes else None
        outcome, row = call(
            self.conn,
            "SELECT claim_id, already_held FROM capacity.claim(%s, %s, %s)",
            (code.lower(), holder, mode),
        )
        assert outcome == expected
        if outcome == "ok":
            claim_id, already_held = row
            assert already_held == (existing is not None)
            if existing is not None:
                assert claim_id == existing
            else:
                assert claim_id not in self.model.claims, "claim ids are never reused"
                self.model.claims[claim_id] = Claim(code, holder)

    @precondition(lambda self: self.model.claims)
    @rule(data=st.data())
    def release_by_id(self, data):
        claim_id = data.draw(st.sampled_from(sorted(self.model.claims)))
        outcome, row = call(self.conn, "SELECT released FROM capacity.release(%s)", (claim_id,))
        assert outcome == "ok"
        assert row[0] == self.model.claims[claim_id].active
        self.model.claims[claim_id].active = False

    @rule(code=st.sampled_from(CODES), holder=st.sampled_from(HOLDERS))
    def release_by_holder(self, code, holder):
        outcome, row = call(
            self.conn, "SELECT released FROM capacity.release(%s, %s)", (code, holder)
        )
        if code not in self.model.codes:
            assert outcome == "CODE_NOT_FOUND"
            return
        existing = self.model.active_claim(code, holder)
        assert outcome == "ok" and row[0] == (existing is not None)
        if existing is not None:
            self.model.claims[existing].active = False

    @rule(claim_id=st.integers(-1, 40))
    def release_unknown_or_known(self, claim_id):
        outcome, row = call(self.conn, "SELECT released FROM capacity.release(%s)", (claim_id,))
        if claim_id not in self.model.claims:
            assert outcome == "CLAIM_NOT_FOUND"
        else:
            assert row[0] == self.model.claims[claim_id].active
            self.model.claims[claim_id].active = False

    @rule(
        pool=st.sampled_from(["default", "bills"]),
        holder=st.sampled_from(HOLDERS),
        limit=st.one_of(st.none(), st.integers(0, 2)),
    )
    def set_limit(self, pool, holder, limit):
        outcome, _ = call(
            self.conn, "SELECT capacity.set_holder_limit(%s, %s, %s)", (pool, holder, limit)
        )
        if limit is not None and limit < self.model.held(pool, holder):
            assert outcome == "CAPACITY_BELOW_USAGE"
        else:
            assert outcome == "ok"
            self.model.limits[(pool, holder)] = limit

    @rule(code=st.sampled_from(CODES))
    def revoke(self, code):
        outcome, row = call(self.conn, "SELECT revoked FROM capacity.revoke_code(%s)", (code,))
        if code not in self.model.codes:
            assert outcome == "CODE_NOT_FOUND"
            return
        ended = [c for c in self.model.claims.values() if c.active and c.code == code]
        assert outcome == "ok" and row[0] == len(ended)
        for c in ended:
            c.active = False
        self.model.codes[code].active = False

    @precondition(lambda self: self.model.claims)
    @rule(data=st.data())
    def make_idle(self, data):
        claim_id = data.draw(st.sampled_from(sorted(self.model.claims)))
        self.conn.execute(
            "UPDATE capacity.claims SET last_seen_at = now() - interval '2 hours'"
            " WHERE claim_id = %s",
            (claim_id,),
        )
        self.model.claims[claim_id].idle = True

    @precondition(lambda self: self.model.claims)
    @rule(data=st.data())
    def heartbeat(self, data):
        claim_id = data.draw(st.sampled_from(sorted(self.model.claims)))
        outcome, _ = call(self.conn, "SELECT capacity.heartbeat(%s)", (claim_id,))
        assert outcome == ("ok" if self.model.claims[claim_id].active else "CLAIM_NOT_FOUND")
        self.model.claims[claim_id].idle = False

    @rule()
    def expire(self):
        due = [c for c in self.model.claims.values() if c.active and c.idle]
        outcome, row = call(
            self.conn, "SELECT expired, more_pending FROM capacity.expire_idle_claims('1 hour')"
        )
        assert outcome == "ok" and row == (len(due), False)
        for c in due:
            c.active = False

    @invariant()
    def counters_match_the_model(self):
        rows = self.conn.execute(
            "SELECT code, usage_count, max_uses, is_active FROM capacity.code_usage"
        ).fetchall()
        assert {r[0]: (r[1], r[2], r[3]) for r in rows} == {
            code: (self.model.usage(code), c.max_uses, c.active)
            for code, c in self.model.codes.items()
        }
        for code in self.model.codes:
            status = self.conn.execute(
                "SELECT can_claim, reason FROM capacity.check(%s)", (code,)
            ).fetchone()
            blocked = self.model.claim_outcome(code, "nobody-with-a-claim")
            assert status == (
                blocked == "ok",
                None if blocked in ("ok", "HOLDER_LIMIT_EXCEEDED") else blocked,
            )
        holders = self.conn.execute(
            "SELECT pool, holder, active_claims FROM capacity.holder_usage"
        ).fetchall()
        for pool, holder, active in holders:
            assert active == self.model.held(pool, holder)


@pytest.fixture
def machine(db):
    CapacityMachine.conninfo = db
    return CapacityMachine


def test_operations_follow_the_model(machine):
    test = machine.TestCase
    test.settings = settings(
        max_examples=60,
        stateful_step_count=40,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    test().runTest()
