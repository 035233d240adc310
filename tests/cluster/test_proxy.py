"""The proxy database of a sharded install: the same capacity.* signatures, results and
errors as one server; routing by code and by claim id; pools on one shard; usage_batch in
input order; and what `pgcapacity cluster install` refuses."""

from __future__ import annotations

import json
import subprocess
import sys

import psycopg
import pytest

from pgcapacity import cluster
from tests.support import reset

SIGNATURES = """
    SELECT p.proname, pg_get_function_identity_arguments(p.oid), pg_get_function_arguments(p.oid),
           pg_get_function_result(p.oid)
      FROM pg_proc AS p
     WHERE p.pronamespace = 'capacity'::regnamespace AND p.proname !~ '^_'
     ORDER BY 1, 2"""
# Public functions of a shard the proxy does not offer (events_after and last_event_id it
# offers only to answer NOT_FOUND: the event log is followed per shard), assert_held holds a row lock in the caller's own transaction (which a
# remote call cannot), the rest is per-server maintenance run on each shard.
NOT_ON_THE_PROXY = {
    "assert_held",
    "schedule_maintenance",
    "unschedule_maintenance",
}


def rows(url: str, query: str, params=None) -> list[tuple]:
    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute(query, params).fetchall()


def outcome(url: str, query: str, params=None):
    """(sqlstate, message, detail, hint) of the error the call raises, or its rows."""
    try:
        return rows(url, query, params)
    except psycopg.Error as err:
        d = err.diag
        return (err.sqlstate, d.message_primary, d.message_detail, d.message_hint)


def test_the_proxy_offers_the_shards_functions_with_their_signatures(sharded):
    shard = {(r[0], r[1]): r for r in rows(sharded.shards[0], SIGNATURES)}
    proxy = {(r[0], r[1]): r for r in rows(sharded.proxy, SIGNATURES)}
    assert set(proxy) <= set(shard), set(proxy) - set(shard)
    for key, row in proxy.items():
        assert row == shard[key], f"{key}: the proxy's signature differs"
    missing = {name for name, _ in set(shard) - set(proxy)}
    assert missing == NOT_ON_THE_PROXY


def test_the_proxy_has_the_shards_result_types_and_views(sharded):
    types = """
        SELECT t.typname, string_agg(a.attname || ' ' || format_type(a.atttypid, a.atttypmod), ', '
                                     ORDER BY a.attnum)
          FROM pg_type t JOIN pg_attribute a ON a.attrelid = t.typrelid AND a.attnum > 0
         WHERE t.typnamespace = 'capacity'::regnamespace AND t.typtype = 'c'
           AND (SELECT relkind FROM pg_class WHERE oid = t.typrelid) = 'c'
         GROUP BY 1 ORDER BY 1"""
    shard_types = dict(rows(sharded.shards[0], types))
    for name, columns in rows(sharded.proxy, types):
        assert columns == shard_types[name], name
    views = """
        SELECT c.relname, string_agg(a.attname || ' ' || format_type(a.atttypid, a.atttypmod), ', '
                                     ORDER BY a.attnum)
          FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0
         WHERE c.relnamespace = 'capacity'::regnamespace AND c.relkind IN ('v', 'm')
         GROUP BY 1 ORDER BY 1"""
    # The proxy's capacity.events is a view over the shards' logs (a table on each shard).
    proxy_views = [v for v in rows(sharded.proxy, views) if v[0] != "events"]
    assert proxy_views == rows(sharded.shards[0], views)


CALLS = [
    ("SELECT * FROM capacity.claim('NOPE', 'h')", None),
    ("SELECT * FROM capacity.claim('bad code!', 'h')", None),
    ("SELECT * FROM capacity.claim('FULL-1', 'other')", None),
    ("SELECT * FROM capacity.claim('FULL-1', 'h', 'sideways')", None),
    ("SELECT * FROM capacity.claim('FULL-1', 'x', 'advisory', 0)", None),
    ("SELECT * FROM capacity.check('bad code!')", None),
    ("SELECT * FROM capacity.release(9, gen_random_uuid())", None),
    ("SELECT capacity.heartbeat(9, gen_random_uuid())", None),
    ("SELECT * FROM capacity.get_claim(9)", None),
    ("SELECT * FROM capacity.usage_batch(ARRAY['OK', NULL])", None),
    ("SELECT * FROM capacity.usage_batch(NULL)", None),
    ("SELECT * FROM capacity.upsert_codes('{}')", None),
    (
        "SELECT * FROM capacity.upsert_codes(%s::jsonb)",
        (json.dumps([{"code": "X", "max_uses": -1}]),),
    ),
    (
        "SELECT * FROM capacity.upsert_codes(%s::jsonb)",
        (json.dumps([{"code": "FULL-1", "max_uses": 0}]),),
    ),
    ("SELECT capacity.set_holder_limit('bad pool!', 'h', 1)", None),
    ("SELECT * FROM capacity.reconcile(NULL)", None),
    ("SELECT * FROM capacity.error_codes()", None),
]


@pytest.mark.parametrize(("query", "params"), CALLS, ids=[q for q, _ in CALLS])
def test_errors_and_answers_are_the_same_as_on_one_server(sharded, new_database, query, params):
    single = new_database()
    for url in (single, sharded.proxy):
        reset(url, [{"code": "FULL-1", "max_uses": 1}])
        rows(url, "SELECT capacity.claim('FULL-1', 'h')")
    assert outcome(sharded.proxy, query, params) == outcome(single, query, params)


def test_claim_ids_name_their_shard_and_route_release_and_heartbeat(sharded):
    codes = [{"code": f"ROUTE-{i}", "max_uses": 5, "pool": f"p{i}"} for i in range(8)]
    reset(sharded.proxy, codes)
    claims = {}
    for spec in codes:
        claim_id, token = rows(
            sharded.proxy, "SELECT claim_id, token FROM capacity.claim(%s, 'h')", (spec["code"],)
        )[0]
        claims[spec["code"]] = (claim_id, token)
    shards_used = {claim_id >> cluster.ID_BITS for claim_id, _ in claims.values()}
    assert shards_used == {0, 1}, "eight pools land on both shards"
    for code, (claim_id, token) in claims.items():
        shard = sharded.shards[claim_id >> cluster.ID_BITS]
        assert rows(
            shard,
            "SELECT k.code FROM capacity.claims JOIN capacity.codes AS k USING (code_id)"
            " WHERE claim_id = %s",
            (claim_id,),
        ) == [(code,)]
        assert rows(
            sharded.proxy, "SELECT capacity.heartbeat(%s, %s) IS NOT NULL", (claim_id, token)
        ) == [(True,)]
        got = rows(sharded.proxy, "SELECT code, holder FROM capacity.get_claim(%s)", (claim_id,))
        assert got == [(code, "h")]
        released = rows(
            sharded.proxy, "SELECT released FROM capacity.release(%s, %s)", (claim_id, token)
        )
        assert released == [(True,)]
    assert rows(sharded.proxy, "SELECT sum(usage_count) FROM capacity.code_usage") == [(0,)]


def test_every_pool_lives_on_one_shard_and_usage_batch_keeps_input_order(sharded):
    codes = [{"code": f"ORG{i % 4}-{i}", "max_uses": 3, "pool": f"org{i % 4}"} for i in range(24)]
    reset(sharded.proxy, codes)
    placed = dict(rows(sharded.proxy, "SELECT pool, shard FROM capacity_cluster.pool_shards"))
    assert set(placed) == {"org0", "org1", "org2", "org3"}
    for pool, shard in placed.items():
        on_shard = rows(
            sharded.shards[shard], "SELECT count(*) FROM capacity.codes WHERE pool = %s", (pool,)
        )
        assert on_shard == [(6,)], f"{pool}'s codes are all on shard {shard}"
    wanted = [c["code"] for c in reversed(codes)] + ["ORG1-1", "NOWHERE", "org2-2"]
    got = rows(sharded.proxy, "SELECT code, found FROM capacity.usage_batch(%s)", (wanted,))
    assert [code for code, _ in got] == [c.upper() for c in wanted]
    assert [found for _, found in got] == [True] * 25 + [False, True]
    # A holder limit is exact across the pool's codes: they are on one shard.
    rows(sharded.proxy, "SELECT capacity.set_holder_limit('org1', 'rev', 2)")
    answers = [
        outcome(sharded.proxy, "SELECT claim_id FROM capacity.claim(%s, 'rev')", (c["code"],))
        for c in codes
        if c["pool"] == "org1"
    ]
    assert sum(1 for a in answers if isinstance(a, list)) == 2
    assert {a[1].split(":")[0] for a in answers if isinstance(a, tuple)} == {
        "HOLDER_LIMIT_EXCEEDED"
    }


LISTINGS = [
    "SELECT code, pool, usage_count FROM capacity.list_codes()",
    "SELECT code FROM capacity.list_codes(page_size => 5)",
    "SELECT code FROM capacity.list_codes(after => 'ORG1-9', page_size => 7)",
    "SELECT code FROM capacity.list_codes(pool => 'org2')",
    "SELECT code FROM capacity.list_codes(search => '-1')",
    "SELECT code, holder, units FROM capacity.list_claims() ORDER BY code, holder",
    "SELECT code, holder FROM capacity.list_claims(code => 'ORG3-3') ORDER BY holder",
    "SELECT code, holder FROM capacity.list_claims(holder => 'h1') ORDER BY code",
    "SELECT count(*) FROM capacity.list_claims(page_size => 4)",
    "SELECT sum(claimed), sum(released), max(units_in_use) FROM capacity.activity()",
    "SELECT sum(claimed) FROM capacity.activity(pool => 'org1')",
    "SELECT sum(claimed) FROM capacity.activity(code => 'ORG2-6')",
    "SELECT * FROM capacity.list_claims(code => 'NOWHERE')",
    "SELECT * FROM capacity.list_codes(page_size => 0)",
    "SELECT * FROM capacity.activity(bucket => '1 ms')",
]


def test_listings_and_activity_are_the_same_as_on_one_server(sharded, new_database):
    single = new_database()
    codes = [{"code": f"ORG{i % 4}-{i}", "max_uses": 3, "pool": f"org{i % 4}"} for i in range(24)]
    for url in (single, sharded.proxy):
        reset(url, codes)
        for c in codes:
            for holder in ("h1", "h2"):
                rows(url, "SELECT 1 FROM capacity.claim(%s, %s)", (c["code"], holder))
            rows(url, "SELECT 1 FROM capacity.release(%s, 'h2')", (c["code"],))
    assert {
        s
        for (s,) in rows(
            sharded.proxy, "SELECT DISTINCT claim_id >> 48 FROM capacity.list_claims()"
        )
    } == {0, 1}
    for query in LISTINGS:
        assert outcome(sharded.proxy, query) == outcome(single, query), query
    # Keyset paging by claim id walks both shards' claims once each.
    seen, after = [], 0
    while page := rows(
        sharded.proxy,
        "SELECT claim_id FROM capacity.list_claims(after => %s, page_size => 5)",
        (after,),
    ):
        seen += [i for (i,) in page]
        after = page[-1][0]
    assert seen == sorted(seen) and len(seen) == len(set(seen)) == 24


def test_the_api_periodic_calls_run_on_every_shard(sharded):
    codes = [{"code": f"ORG{i % 4}-{i}", "max_uses": 8, "pool": f"org{i % 4}"} for i in range(8)]
    reset(sharded.proxy, codes)
    rows(sharded.proxy, "SELECT * FROM capacity.publish_changes()")
    for c in codes:
        rows(sharded.proxy, "SELECT 1 FROM capacity.claim(%s, 'h')", (c["code"],))
    published = rows(sharded.proxy, "SELECT published, codes FROM capacity.publish_changes()")
    assert published == [(True, 8)]
    assert rows(
        sharded.proxy, "SELECT published, codes, reason FROM capacity.publish_changes()"
    ) == [(False, 0, "nothing")]
    refreshed = rows(
        sharded.proxy, "SELECT refreshed FROM capacity.refresh_dashboard(force => true)"
    )
    assert refreshed == [(True,)]
    dashboard = rows(sharded.proxy, "SELECT sum(units_used), sum(codes) FROM capacity.dashboard")
    assert dashboard == [(8, 8)]
    assert rows(
        sharded.proxy, "SELECT * FROM capacity.tune_slots(min_claims => 1, slots => 4)"
    ) == sorted((c["code"], 4) for c in codes)


def test_a_code_cannot_move_to_a_pool_on_another_shard(sharded):
    reset(sharded.proxy, [{"code": "STAY", "max_uses": 1, "pool": "here"}])
    here = rows(
        sharded.proxy, "SELECT shard FROM capacity_cluster.pool_shards WHERE pool = 'here'"
    )[0][0]
    other = next(
        f"there{i}"
        for i in range(100)
        if rows(sharded.proxy, "SELECT capacity_cluster.hash_shard(%s)", (f"there{i}",))[0][0]
        != here
    )
    moved = [{"code": "STAY", "max_uses": 1, "pool": other}]
    error = outcome(
        sharded.proxy, "SELECT * FROM capacity.upsert_codes(%s::jsonb)", (json.dumps(moved),)
    )
    assert error[0] == "CP001" and "lives on shard" in error[1], error
    assert rows(sharded.proxy, "SELECT pool FROM capacity.check('STAY')") == [("here",)]


def test_install_refuses_what_the_cluster_cannot_be(sharded, new_database):
    third = new_database()
    with pytest.raises(cluster.ClusterError, match="power of two"):
        cluster.install(sharded.proxy, [*sharded.shards, third])
    with pytest.raises(cluster.ClusterError, match="same database"):
        cluster.install(sharded.proxy, [sharded.shards[0], sharded.shards[0]])
    with pytest.raises(cluster.ClusterError, match="it is shard 1"):
        cluster.install(sharded.proxy, list(reversed(sharded.shards)))
    with pytest.raises(cluster.ClusterError, match="database of its own"):
        cluster.install(sharded.shards[0], sharded.shards)


def test_cluster_status_and_sql_from_the_command_line(sharded):
    reset(sharded.proxy, [{"code": "SEEN", "max_uses": 2}])
    rows(sharded.proxy, "SELECT capacity.claim('SEEN', 'h')")
    cli = [sys.executable, "-m", "pgcapacity", "cluster"]
    again = subprocess.run(
        [
            *cli,
            "install",
            "--proxy",
            sharded.proxy,
            "--shard",
            sharded.shards[0],
            "--shard",
            sharded.shards[1],
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert again.returncode == 0, again.stderr
    assert "0 step(s) applied" in again.stdout  # idempotent: nothing to do the second time
    assert rows(sharded.proxy, "SELECT usage_count FROM capacity.check('SEEN')") == [(1,)]
    status = subprocess.run(
        [*cli, "status", "--proxy", sharded.proxy], capture_output=True, text=True, check=False
    )
    assert status.returncode == 0, status.stderr
    lines = status.stdout.splitlines()
    assert len(lines) == 3 and lines[0].split()[0] == "shard"
    assert sum(int(line.split()[3]) for line in lines[1:]) == 1  # units in use over the shards
    script = subprocess.run(
        [
            *cli,
            "sql",
            "--proxy",
            sharded.proxy,
            "--shard",
            sharded.shards[0],
            "--shard",
            sharded.shards[1],
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert (
        script.returncode == 0 and script.stdout.startswith("BEGIN;") and "plproxy" in script.stdout
    )
    bad = subprocess.run(
        [
            *cli,
            "sql",
            "--proxy",
            sharded.proxy,
            "--shard",
            sharded.shards[0],
            "--shard",
            "a",
            "--shard",
            "b",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert bad.returncode == 2 and "power of two" in bad.stderr
