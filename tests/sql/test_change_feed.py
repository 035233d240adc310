"""The change feed: writes leave marks, publish_changes() turns them into NOTIFYs."""

from __future__ import annotations

import threading

import psycopg
import pytest

from tests.support import reset, run_concurrently


@pytest.fixture
def listener(db):
    with psycopg.connect(db, autocommit=True) as conn:
        conn.execute("LISTEN pgcapacity_changes")
        yield conn


def heard(conn: psycopg.Connection) -> list[str]:
    """Notifications already delivered to the listening session (no waiting)."""
    conn.execute("SELECT 1")  # notifications arrive with the next round trip
    return [n.payload for n in conn.notifies(timeout=0.2, stop_after=100)]


def publish(db: str):
    with psycopg.connect(db, autocommit=True) as conn:
        return conn.execute("SELECT * FROM capacity.publish_changes()").fetchone()


def test_writes_are_heard_only_once_published(db, listener):
    reset(db, [{"code": "FEED-A", "max_uses": 5}, {"code": "FEED-B", "max_uses": 5}])
    publish(db)
    heard(listener)  # forget the set-up
    with psycopg.connect(db, autocommit=True) as conn:
        conn.execute("SELECT capacity.claim('FEED-A', 'x')")
        conn.execute("SELECT capacity.claim('FEED-B', 'x')")
        conn.execute("SELECT capacity.claim('FEED-A', 'y')")
    assert heard(listener) == []  # a write does not notify by itself
    assert publish(db) == (True, 2, "changes")
    assert heard(listener) == ["FEED-A,FEED-B"]
    assert publish(db) == (False, 0, "nothing")


def test_an_uncommitted_write_is_published_only_after_its_commit(db, listener):
    reset(db, [{"code": "FEED-C", "max_uses": 5}])
    publish(db)
    heard(listener)
    with psycopg.connect(db) as writer:
        writer.execute("SELECT capacity.claim('FEED-C', 'x')")
        assert publish(db) == (False, 0, "nothing")  # its mark is not visible yet
        writer.commit()
    assert publish(db) == (True, 1, "changes")
    assert heard(listener) == ["FEED-C"]


def test_many_codes_are_split_into_notifications_that_fit(db, listener):
    codes = [{"code": f"FEED-LONG-{'X' * 40}-{i:04d}", "max_uses": 1} for i in range(400)]
    reset(db, codes)
    publish(db)
    heard(listener)
    with psycopg.connect(db, autocommit=True) as conn:
        conn.execute("UPDATE capacity.codes SET metadata = '{\"touched\": true}'")
    assert publish(db) == (True, 400, "changes")
    payloads = heard(listener)
    # 400 codes of 55 bytes: 125 per 7000 bytes
    assert len(payloads) == 4 and all(len(p.encode()) <= 7000 for p in payloads)
    assert sorted(",".join(payloads).split(",")) == sorted(c["code"] for c in codes)


def test_truncate_is_published_as_drop_everything(db, listener):
    reset(db, [])
    publish(db)
    heard(listener)
    with psycopg.connect(db, autocommit=True) as conn:
        conn.execute("TRUNCATE capacity.codes CASCADE")
    assert publish(db)[0] is True
    assert heard(listener) == ["*"]


@pytest.mark.parametrize("slots", [0, 4])
def test_every_operation_that_changes_a_status_is_published(db, listener, slots):
    """Usage changes are marked by the functions themselves (no trigger fires for them):
    each operation below must reach listeners, on plain and slotted codes."""
    reset(db, [{"code": "FEED-OPS", "max_uses": 5, "slots": slots}])
    publish(db)
    heard(listener)
    with psycopg.connect(db, autocommit=True) as conn:

        def published_after(sql: str, *args) -> list[str]:
            conn.execute(sql, args)
            publish(db)
            return heard(listener)

        claim_id = conn.execute("SELECT claim_id FROM capacity.claim('FEED-OPS', 'a')").fetchone()[
            0
        ]
        assert publish(db)[1] == 1 and heard(listener) == ["FEED-OPS"]
        assert published_after("SELECT capacity.release(%s::bigint)", claim_id) == ["FEED-OPS"]
        conn.execute("SELECT capacity.claim('FEED-OPS', 'b')")
        publish(db)
        heard(listener)
        assert published_after("SELECT capacity.release('FEED-OPS', 'b')") == ["FEED-OPS"]
        conn.execute("SELECT capacity.claim('FEED-OPS', 'c')")
        conn.execute("UPDATE capacity.claims SET last_seen_at = now() - interval '2 hours'")
        publish(db)
        heard(listener)
        assert published_after("SELECT * FROM capacity.expire_idle_claims('1 hour')") == [
            "FEED-OPS"
        ]
        # A drift made by hand (it is not announced), repaired by reconcile: announced.
        conn.execute(
            "UPDATE capacity.codes SET usage_count = usage_count + 1 WHERE code = 'FEED-OPS'"
        )
        publish(db)
        heard(listener)
        assert published_after("SELECT * FROM capacity.reconcile(true)") == ["FEED-OPS"]
        assert published_after(
            'SELECT capacity.upsert_codes(\'[{"code": "FEED-OPS", "max_uses": 7}]\')'
        ) == ["FEED-OPS"]
        assert published_after("SELECT * FROM capacity.revoke_code('FEED-OPS')") == ["FEED-OPS"]


def test_the_dashboards_last_hour_counts_each_committed_claim_once_while_publishers_race(db):
    """Claims on three pools from 16 connections, a third of them rolled back, while two
    publishers consume the marks as fast as they can: pool_activity (the dashboard's last
    hour) ends with exactly the committed claims of each pool."""
    pools = ["race-a", "race-b", "race-c"]
    reset(db, [{"code": f"RACE-{i}", "max_uses": 10_000, "pool": pools[i % 3]} for i in range(6)])
    stop = threading.Event()
    published: list[int] = []

    def publisher() -> None:
        with psycopg.connect(db, autocommit=True) as conn:
            while not stop.is_set():
                published.append(
                    conn.execute("SELECT codes FROM capacity.publish_changes()").fetchone()[0]
                )

    def work(i: int, conn: psycopg.Connection) -> dict[str, int]:
        committed = dict.fromkeys(pools, 0)
        for n in range(60):
            code = (i + n) % 6
            with conn.transaction(force_rollback=n % 3 == 0):
                conn.execute("SELECT capacity.claim(%s, %s)", (f"RACE-{code}", f"w{i}-{n}"))
            committed[pools[code % 3]] += n % 3 != 0
        return committed

    publishers = [threading.Thread(target=publisher, daemon=True) for _ in range(2)]
    for t in publishers:
        t.start()
    try:
        results = run_concurrently(db, 16, work)
    finally:
        stop.set()
        for t in publishers:
            t.join()
    assert sum(published) > 1  # the publishers really ran alongside the claims
    expected = {p: sum(r[p] for r in results) for p in pools}
    with psycopg.connect(db, autocommit=True) as conn:
        conn.execute("SELECT capacity.publish_changes()")  # what the racers left
        counted = dict(
            conn.execute(
                "SELECT pool, sum(claims)::int FROM capacity.pool_activity GROUP BY pool"
            ).fetchall()
        )
        assert counted == expected and sum(counted.values()) == 16 * 40
        conn.execute("SELECT capacity.refresh_dashboard(true)")
        board = dict(
            conn.execute(
                "SELECT pool, claims_last_hour FROM capacity.dashboard WHERE pool LIKE 'race-%'"
            ).fetchall()
        )
        assert board == expected


def test_readers_of_the_dashboard_never_wait_for_a_refresh_and_see_one_set_of_rows(db):
    """A refresh rewrites the dashboard's rows in its own transaction: while it is open, a
    reader gets the previous rows at once (a TRUNCATE or a plain REFRESH MATERIALIZED VIEW
    would make it wait), and after it commits, all of the new ones."""
    reset(db, [{"code": f"READ-{p}", "max_uses": 5, "pool": f"read-{p}"} for p in "ab"])
    rows = "SELECT pool, units_used FROM capacity.dashboard WHERE pool LIKE 'read-%' ORDER BY pool"
    with (
        psycopg.connect(db, autocommit=True) as reader,
        psycopg.connect(db) as refresher,  # not autocommit: its transaction stays open
    ):
        reader.execute("SELECT capacity.refresh_dashboard(true)")
        reader.execute("SELECT capacity.claim('READ-A', 'h'), capacity.claim('READ-B', 'h')")
        assert refresher.execute(
            "SELECT refreshed FROM capacity.refresh_dashboard()"
        ).fetchone() == (True,)
        reader.execute("SET statement_timeout = '2s'")  # a wait would fail the read
        assert reader.execute(rows).fetchall() == [("read-a", 0), ("read-b", 0)]
        refresher.commit()
        assert reader.execute(rows).fetchall() == [("read-a", 1), ("read-b", 1)]
