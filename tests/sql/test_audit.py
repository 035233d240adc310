"""capacity._invariant_violations(), the one audit of the counters that the test suite,
the benchmark and reconcile() rely on, sees every rule broken (and nothing otherwise)."""

from __future__ import annotations

import psycopg

from tests.support import reset


def _violations(conn: psycopg.Connection) -> list[tuple]:
    return conn.execute(
        "SELECT rule, subject, expected, found FROM capacity._invariant_violations()"
        " ORDER BY rule, subject"
    ).fetchall()


def test_the_audit_sees_each_rule_broken(db):
    reset(db, [{"code": "AUD-1", "max_uses": 5}, {"code": "AUD-S", "max_uses": 4, "slots": 2}])
    with psycopg.connect(db, autocommit=True) as conn:
        conn.execute("SELECT capacity.set_holder_limit('default', 'hal', 2)")
        conn.execute("SELECT capacity.claim('AUD-1', 'hal')")
        conn.execute("SELECT capacity.claim('AUD-S', 'sam')")
        assert _violations(conn) == []
        # Counters written by hand, behind the functions' backs (CHECKs dropped to allow it).
        conn.execute("ALTER TABLE capacity.holders DROP CONSTRAINT holders_active_within_limit")
        conn.execute("UPDATE capacity.codes SET usage_count = 3 WHERE code = 'AUD-1'")
        conn.execute("UPDATE capacity.holders SET active_claims = 3 WHERE holder = 'hal'")
        conn.execute("""
            UPDATE capacity.code_slots AS s SET cap = s.cap + 3, used = s.used + 3
              FROM capacity.codes AS c
             WHERE c.code_id = s.code_id AND c.code = 'AUD-S' AND s.slot = 0""")
        slot = conn.execute(
            "SELECT s.slot, s.used FROM capacity.code_slots s JOIN capacity.codes c USING (code_id)"
            " WHERE c.code = 'AUD-S' AND s.slot = 0"
        ).fetchone()
        assert _violations(conn) == [
            ("holder_counts_its_claims", "default/hal", 1, 3),
            ("holder_within_limit", "default/hal", 2, 3),
            ("slot_counts_its_claims", f"AUD-S slot {slot[0]}", slot[1] - 3, slot[1]),
            ("slots_cover_capacity", "AUD-S", 4, 7),
            ("usage_equals_active_claims", "AUD-1", 1, 3),
            ("usage_equals_active_claims", "AUD-S", 1, 4),
        ]
        conn.execute("UPDATE capacity.code_slots SET cap = cap + 1 WHERE slot = 1")
        over = [v for v in _violations(conn) if v[0] == "usage_within_capacity"]
        assert over == []  # 4 of 4 used: at capacity, not above
        conn.execute("""
            UPDATE capacity.code_slots AS s SET used = s.used + 1
              FROM capacity.codes AS c
             WHERE c.code_id = s.code_id AND c.code = 'AUD-S' AND s.slot = 1""")
        assert ("usage_within_capacity", "AUD-S", 4, 5) in _violations(conn)
        # reconcile() reports the code rule of the same audit.
        assert conn.execute("SELECT code, drift FROM capacity.reconcile()").fetchall() == [
            ("AUD-1", 2),
            ("AUD-S", 4),
        ]
