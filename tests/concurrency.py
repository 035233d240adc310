"""Helpers for concurrency tests: many real connections started at once, exact audits."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import psycopg

LOCK_MODES = ["wait", "nowait", "advisory"]

# SQLSTATEs outside class CP that a caller must treat as "retry" (SPEC §3, Errors).
CONTENTION = {"55P03": "LOCK_CONTENDED", "40001": "LOCK_CONTENDED"}


def error_name(err: psycopg.Error) -> str:
    """pgcapacity error name from the message prefix, else the raw SQLSTATE.

    Deadlocks (40P01) are deliberately not folded into LOCK_CONTENDED here: the tests
    must see them, because the lock order promises there are none.
    """
    state = err.sqlstate or ""
    if state.startswith("CP"):
        return str(err.diag.message_primary).split(":", 1)[0]
    return CONTENTION.get(state, state)


def call(conn: psycopg.Connection, sql: str, params: Any = None) -> tuple[str, tuple | None]:
    """Runs one statement; returns ("ok", row) or (error name, None)."""
    try:
        return "ok", conn.execute(sql, params).fetchone()
    except psycopg.Error as err:
        if conn.info.transaction_status == psycopg.pq.TransactionStatus.INERROR:
            conn.rollback()
        return error_name(err), None


def run_concurrently(
    conninfo: str, n: int, work: Callable[[int, psycopg.Connection], Any], timeout: float = 300
) -> list[Any]:
    """Opens n connections, then starts work(i, conn) on all of them at the same instant."""
    conns = [psycopg.connect(conninfo, autocommit=True) for _ in range(n)]
    barrier = threading.Barrier(n)
    results: list[Any] = [None] * n
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            barrier.wait()
            results[i] = work(i, conns[i])
        except BaseException as err:  # re-raised in the main thread below
            errors.append(err)

    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(n)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout)
            if t.is_alive():
                raise TimeoutError(f"a worker did not finish within {timeout}s")
    finally:
        for c in conns:
            c.close()
    if errors:
        raise errors[0]
    return results


def audit(conninfo: str) -> dict[str, int]:
    """Asserts SPEC §3 guarantee 1 over the whole database; returns totals."""
    with psycopg.connect(conninfo) as conn:
        # code_usage.usage_count is the whole usage (a slotted code's slot rows included).
        bad_codes = conn.execute("""
            SELECT u.code, u.usage_count, u.max_uses, count(cl.claim_id)
              FROM capacity.code_usage u
              JOIN capacity.codes c USING (code)
              LEFT JOIN capacity.claims cl ON cl.code_id = c.code_id AND cl.released_at IS NULL
             GROUP BY u.code, u.usage_count, u.max_uses
            HAVING u.usage_count <> count(cl.claim_id) OR u.usage_count < 0 OR u.usage_count > u.max_uses
        """).fetchall()
        assert bad_codes == [], f"usage differs from active claims or capacity: {bad_codes}"
        # Slotted codes: capacity = base + caps, and each slot counts exactly its claims.
        bad_slots = conn.execute("""
            SELECT c.code, c.usage_count, c.max_uses, sum(s.cap)
              FROM capacity.codes c JOIN capacity.code_slots s USING (code_id)
             GROUP BY c.code_id HAVING c.usage_count + sum(s.cap) <> c.max_uses
            UNION ALL
            SELECT s.slot_id::text, s.used, s.cap, count(cl.claim_id)
              FROM capacity.code_slots s
              LEFT JOIN capacity.claims cl ON cl.slot_id = s.slot_id AND cl.released_at IS NULL
             GROUP BY s.slot_id HAVING s.used <> count(cl.claim_id)
        """).fetchall()
        assert bad_slots == [], f"slot rows disagree with capacity or claims: {bad_slots}"
        bad_holders = conn.execute("""
            SELECT h.pool, h.holder, h.active_claims, h.max_claims, count(cl.claim_id)
              FROM capacity.holders h
              LEFT JOIN capacity.claims cl
                ON cl.pool = h.pool AND cl.holder = h.holder AND cl.released_at IS NULL
             GROUP BY h.pool, h.holder
            HAVING h.active_claims <> count(cl.claim_id) OR h.active_claims > h.max_claims
        """).fetchall()
        assert bad_holders == [], f"holder counters wrong or above limit: {bad_holders}"
        assert conn.execute("SELECT count(*) FROM capacity.reconcile()").fetchone()[0] == 0
        # The event log tells the same story: claims minus endings equals usage.
        by_events, usage = conn.execute("""
            SELECT (SELECT count(*) FILTER (WHERE kind = 'claimed')
                         - count(*) FILTER (WHERE kind IN ('released', 'expired', 'revoked') AND claim_id IS NOT NULL)
                      FROM capacity.events),
                   (SELECT coalesce(sum(usage_count), 0) FROM capacity.code_usage)
        """).fetchone()
        assert by_events == usage, f"event log says {by_events} units in use, codes say {usage}"
        return {"usage": int(usage)}


def reset(conninfo: str, codes: list[dict]) -> None:
    """Empties the capacity tables and creates the given codes."""
    import json

    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(
            "TRUNCATE capacity.events, capacity.claims, capacity.holders, capacity.code_slots,"
            " capacity.codes, capacity.pending_changes, capacity.pool_activity"
        )
        conn.execute("SELECT capacity.upsert_codes(%s::jsonb)", (json.dumps(codes),))
