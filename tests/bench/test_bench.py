"""`pgcapacity bench` end to end on the test server (tiny durations: this checks that every
row runs and is audited, not how fast anything is)."""

from __future__ import annotations

import json
from collections import Counter

import psycopg
import pytest

from pgcapacity_bench import cpustat, http, scale, targets, workloads
from pgcapacity_bench import main as bench_main
from pgcapacity_bench.report import Row, add_ratios, by_round, ratios_of
from pgcapacity_bench.runner import Measurement


def test_every_workload_runs_correctly_with_ratios(admin_conninfo, capsys):
    args = bench_main.parser().parse_args(
        ["--seconds", "0.3", "--warmup", "0.1", "--clients", "3", "--json"]
    )
    assert bench_main.run(args, admin_conninfo) == 0
    report = json.loads(capsys.readouterr().out)
    rows = {(r["workload"], r["lock_mode"]): r for r in report["rows"]}
    pgcapacity = ("hot", "hot-slotted", "spread", "holders")
    pgcapacity += ("hot-wait", "spread-units", "spread-lease", "spread-pool-cap", "spread-pool-row")
    expected = {(w, m) for w in pgcapacity for m in workloads.LOCK_MODES}
    expected |= {
        (w, None)
        for w in ("read", "naive-hot", "naive-spread", "floor-spread", "raw-update", "select1")
    }
    assert set(rows) == expected
    for key, row in rows.items():
        assert row["ops"] > 0 and row["errors"] == 0 and row["problems"] == [], (key, row)
        assert row["p50_ms"] <= row["p99_ms"]
        assert 0 <= row["steal"] <= 1, (key, row)  # measured on Linux, in every row
    assert rows[("hot", "wait")]["vs_baseline"] is not None
    assert rows[("read", None)]["vs_baseline"] is not None  # against select1
    for feature in ("spread-units", "spread-lease", "spread-pool-cap", "spread-pool-row"):
        assert rows[(feature, "nowait")]["vs_baseline"] is not None  # against spread, nowait
    assert report["meta"]["server"] == "given" and report["meta"]["version"]


def test_repeated_runs_keep_the_ratios_of_every_round(admin_conninfo, capsys):
    short = ["--seconds", "0.2", "--warmup", "0.1", "--clients", "2", "--json"]
    workload = ["--workloads", "spread", "naive-spread", "raw-update", "--modes", "advisory"]
    args = bench_main.parser().parse_args([*short, *workload, "--repeat", "2"])
    assert bench_main.run(args, admin_conninfo) == 0
    report = json.loads(capsys.readouterr().out)
    rows = {r["workload"]: r for r in report["rows"]}
    spread = rows["spread"]
    assert len(spread["vs_baseline_rounds"]) == len(spread["vs_raw_rounds"]) == 2
    # The median of two rounds is their mean: its ratio lies between the rounds' ratios.
    low, high = sorted(spread["vs_baseline_rounds"])
    assert low - 0.01 <= spread["vs_baseline"] <= high + 0.01, spread
    assert rows["naive-spread"]["vs_baseline_rounds"] == [None, None]  # a baseline itself
    listed = by_round([Row(**_fields(r)) for r in report["rows"]])
    assert "spread             advisory       2  x base " in listed
    assert len(spread["steal_rounds"]) == 2 and spread["steal"] in spread["steal_rounds"]
    assert "   steal " in listed.splitlines()[1]
    # raw-update's ratios (1.00x over itself) say nothing; its rounds' steal does
    (raw,) = [line for line in listed.splitlines() if line.startswith("raw-update")]
    assert "x raw" not in raw and "  steal " in raw


def test_steal_is_a_share_of_the_machines_cpu_time():
    line = "cpu  {} 0 {} {} {} 0 {} {} 7 0\ncpu0 1 2 3 4 5 6 7 8 9 10\n"
    before = cpustat.parse(line.format(1000, 200, 5000, 0, 10, 40))
    after = cpustat.parse(line.format(1550, 300, 5200, 50, 10, 140))  # 1000 ticks in all
    assert cpustat.steal_share(before, after) == 0.1  # 100 stolen
    assert cpustat.steal_share(before, before) is None  # no time passed
    assert cpustat.steal_share(None, after) is None  # not Linux: nothing to say
    with pytest.raises(ValueError):
        cpustat.parse("intr 1 2 3")


@pytest.fixture
def bench_db(new_database):
    db = new_database()
    with psycopg.connect(db, autocommit=True) as conn:
        workloads.install(conn)
        workloads.reset(conn, 4)
        yield conn


def _measurement(claimed: int, released: int) -> Measurement:
    return Measurement(1.0, Counter(), [], Counter(claimed=claimed, released=released))


def test_the_audit_passes_on_a_consistent_database(bench_db):
    assert workloads.audit(bench_db, workloads.WORKLOADS["hot"], _measurement(5, 5)) == []


def test_the_audit_sees_usage_that_does_not_match_the_clients(bench_db):
    problems = workloads.audit(bench_db, workloads.WORKLOADS["hot"], _measurement(3, 1))
    assert problems == ["usage 0 != units claimed-released 2"]


def test_the_audit_sees_drift_and_overuse(bench_db):
    bench_db.execute("ALTER TABLE capacity.codes DROP CONSTRAINT codes_usage_within_capacity")
    bench_db.execute("UPDATE capacity.codes SET usage_count = 1001 WHERE code = 'BENCH-S00001'")
    problems = workloads.audit(bench_db, workloads.WORKLOADS["spread"], _measurement(0, 0))
    assert problems == [
        "usage 1001 != units claimed-released 0",
        "usage_equals_active_claims: broken for 1",
        "usage_within_capacity: broken for 1",
    ]


def test_http_rows_drive_the_real_api_with_wrk(admin_conninfo, capsys):
    args = bench_main.parser().parse_args(
        [
            "--seconds",
            "1",
            "--warmup",
            "0.1",
            "--clients",
            "2",
            "--http",
            "--json",
            "--workloads",
            "spread",
            "select1",
            "--modes",
            "advisory",
        ]
    )
    assert bench_main.run(args, admin_conninfo) == 0
    report = json.loads(capsys.readouterr().out)
    rows = {r["workload"]: r for r in report["rows"]}
    for name in http.HTTP_TABLE:
        row = rows[name]
        assert row["ops"] > 0 and row["errors"] == 0 and row["problems"] == [], row
        assert 0 <= row["steal"] <= 1, row  # wrk's rows measure it too (run_wrk)
    # http-claim against the direct SQL claims run beside it, not the spread row before
    by_mode = {(r["workload"], r["lock_mode"]): r for r in report["rows"]}
    for config in ("1 worker", "2 workers"):  # each API's claims against the SQL beside it
        beside, claim = by_mode["sql-claim", config], by_mode["http-claim", config]
        assert beside["ops"] > 0 and beside["problems"] == [] and beside["audited"]
        assert claim["vs_baseline"] == round(claim["ops_per_s"] / beside["ops_per_s"], 2)
        assert rows["spread"]["ops_per_s"] != beside["ops_per_s"]  # a run of its own
    assert rows["http-status-cached"]["vs_baseline"] is not None  # against SELECT 1


@pytest.mark.parametrize(
    ("flag", "value", "says"),
    [
        ("--clients", "0", "0: it must be at least 1"),
        ("--seconds", "0", "0: it must be more than 0"),
        ("--warmup", "-1", "-1: it must be at least 0"),
        ("--repeat", "0", "0: it must be at least 1"),
        ("--retries", "x", "'x' is not a number"),
        ("--http-workers", "0", "0: it must be at least 1"),
    ],
)
def test_a_count_or_duration_out_of_range_is_a_usage_error(flag, value, says, capsys):
    with pytest.raises(SystemExit) as exited:  # before any server is started
        bench_main.parser().parse_args([flag, value])
    assert exited.value.code == 2
    assert f"argument {flag}: {says}" in capsys.readouterr().err


def _row(workload, mode, clients, ops_per_s=1000.0, **extra) -> Row:
    """A row of the table as a run would have measured it (3 s, no contention)."""
    fields = dict(seconds=3.0, ops=int(ops_per_s * 3), p50_ms=1.0, p95_ms=2.0, p99_ms=3.0)
    fields |= dict(contention=0, retries=0, giveups=0, full=0, refused=0, errors=0)
    return Row(workload, mode, clients, ops_per_s=ops_per_s, **(fields | extra))


def test_the_targets_are_judged_on_their_own_rows_and_bars():
    rows = [
        _row("hot-slotted", "advisory", 64, vs_baseline=3.1, p99_ms=49.0),
        _row("spread", "advisory", 32, vs_raw=0.59),
        _row("spread", "advisory", 64, vs_raw=0.9),  # not the target's client count
        _row("hot-slotted", "nowait", 64, ops_per_s=1000.0, giveups=10),  # 10 of 3 010
        _row("http-claim", "2 workers", 32, vs_baseline=0.9),  # the target is one worker
        _row("http-claim", "1 worker", 32, vs_baseline=0.5),
        _row("http-status-cached", "1 worker", 32, ops_per_s=5000.0, p99_ms=20.0),
    ]
    found = {v.target.split(",")[0]: v for v in targets.verdicts(rows)}
    assert {name: v.met for name, v in found.items()} == {
        "hot code": True,
        "spread codes": False,
        "nowait on a hot code": True,
        "HTTP claim": True,
        "cached status": False,  # p99 must stay under 20 ms
    }
    assert found["spread codes"].measured == "spread advisory, 32 clients: 59%"
    assert (
        found["HTTP claim"].measured
        == "http-claim 1 worker, 32 clients: 50% of sql-claim beside it"
    )


def test_a_verdict_says_how_its_rounds_fared_against_the_bar():
    """The verdict is judged on the median of the rounds' ratios; the rounds themselves say
    whether it sits on the bar or clear of it."""
    rows = [
        _row("spread", "advisory", 32, vs_raw=0.53, vs_raw_rounds=[0.67, 0.43, 0.53, 0.61]),
        _row(
            "http-claim",
            "1 worker",
            32,
            vs_baseline=0.49,
            vs_baseline_rounds=[0.45, 0.49, None, 0.5, 0.52],  # None: a round without it
        ),
        _row("hot-slotted", "advisory", 64, vs_baseline=2.62, vs_baseline_rounds=[1.86, 3.1]),
    ]
    found = {v.target.split(",")[0]: v.measured for v in targets.verdicts(rows)}
    assert found["spread codes"].endswith("53% (rounds 43%-67%, 2 of 4 at or above 60%)")
    assert found["HTTP claim"].endswith(
        "49% of sql-claim beside it (rounds 45%-52%, 2 of 4 at or above 50%)"
    )
    assert found["hot code"].endswith(
        "2.62x (rounds 1.86x-3.10x, 1 of 2 at or above 3.00x), p99 3.0 ms"
    )


def test_a_hot_code_that_oversold_misses_its_target_whatever_its_rate():
    rows = [_row("hot-slotted", "advisory", 64, vs_baseline=5.0, p99_ms=10.0, problems=["x"])]
    (verdict,) = targets.verdicts(rows)
    assert not verdict.met and verdict.measured.endswith("audit FAILED")


def test_a_run_without_a_targets_rows_judges_none_of_them():
    rows = [_row("hot", "advisory", 64, vs_baseline=9.0), _row("spread", "advisory", 8)]
    assert targets.verdicts(rows) == [] and targets.summary([]) == ""


def test_the_table_ends_with_the_targets_its_rows_answer(admin_conninfo, capsys):
    short = ["--seconds", "0.3", "--warmup", "0.1", "--clients", "32"]
    workload = ["--workloads", "spread", "naive-spread", "raw-update", "--modes", "advisory"]
    args = bench_main.parser().parse_args([*short, *workload])
    assert bench_main.run(args, admin_conninfo) == 0
    out = capsys.readouterr().out
    head, _, verdicts = out.partition("Performance targets in this run (docs/benchmarks.md):\n")
    assert "spread             advisory      32" in head
    header = next(h for h in head.splitlines() if h.startswith("workload"))
    assert header.endswith("x raw  steal  correct")
    spread = next(r for r in head.splitlines() if r.startswith("spread"))
    assert spread.split()[-2].endswith("%") and spread.split()[-1] == "ok"  # steal, audit
    (line,) = verdicts.strip().splitlines()  # only the spread target has its rows here
    assert "spread codes, 32 clients: >= 60 % of raw-update" in line
    assert line.split()[0] in ("met", "NOT")


def test_each_http_claim_row_is_compared_with_the_sql_claims_run_beside_its_own_api():
    rows = [
        _row("spread", "advisory", 32, ops_per_s=1000.0),  # minutes earlier: not the baseline
        _row("sql-claim", "1 worker", 32, ops_per_s=800.0),
        _row("http-claim", "1 worker", 32, ops_per_s=400.0),
        _row("sql-claim", "2 workers", 32, ops_per_s=600.0),
        _row("http-claim", "2 workers", 32, ops_per_s=450.0),
    ]
    baseline_of = {n: w.baseline for n, w in workloads.WORKLOADS.items()} | http.SQL_COUNTERPART
    ratios = ratios_of(rows, baseline_of)
    assert ratios[("http-claim", "1 worker", 32)][0] == 0.5
    assert ratios[("http-claim", "2 workers", 32)][0] == 0.75
    assert ratios[("sql-claim", "1 worker", 32)][0] is None  # a baseline itself


def test_with_rounds_a_ratio_is_the_median_of_each_rounds_own_ratio():
    """Three rounds of a row and its baseline, the machine slower in the second: the ratio
    of the median runs would divide round 2's claims by round 2's baseline only by chance;
    the rounds' ratios are 0.67, 0.4 and 0.5, and their median is what the row says."""
    runs = [(100.0, 150.0), (200.0, 500.0), (300.0, 600.0)]  # (spread, naive-spread) per round
    rounds = [
        [_row("spread", "advisory", 8, ops_per_s=a), _row("naive-spread", None, 8, ops_per_s=b)]
        for a, b in runs
    ]
    baseline_of = {n: w.baseline for n, w in workloads.WORKLOADS.items()}
    medians = [
        _row("spread", "advisory", 8, ops_per_s=200.0),
        _row("naive-spread", None, 8, ops_per_s=500.0),
    ]
    add_ratios(medians, baseline_of, [ratios_of(each, baseline_of) for each in rounds])
    assert medians[0].vs_baseline_rounds == [0.67, 0.4, 0.5]
    assert medians[0].vs_baseline == 0.5  # not 200 / 500 = 0.4
    one = [
        _row("spread", "advisory", 8, ops_per_s=200.0),
        _row("naive-spread", None, 8, ops_per_s=500.0),
    ]
    add_ratios(one, baseline_of)  # a single round: the ratio of the runs themselves
    assert one[0].vs_baseline == 0.4


def test_scale_rows_run_through_a_proxy_and_split_the_servers_cpu(admin_conninfo, capsys):
    short = ["--seconds", "0.3", "--warmup", "0.1", "--clients", "2", "--json"]
    args = bench_main.parser().parse_args([*short, "--workloads", "select1", "--shards", "1", "2"])
    assert bench_main.run(args, admin_conninfo) == 0
    report = json.loads(capsys.readouterr().out)
    rows = {(r["workload"], r["lock_mode"]): r for r in report["rows"]}
    assert set(rows) == {
        ("select1", None),
        ("scale-direct", "advisory"),
        ("scale-proxy", "1 shard"),
        ("scale-proxy", "2 shards"),
    }
    direct = rows["scale-direct", "advisory"]
    for key in [
        ("scale-direct", "advisory"),
        ("scale-proxy", "1 shard"),
        ("scale-proxy", "2 shards"),
    ]:
        row = rows[key]
        assert row["ops"] > 0 and row["errors"] == 0 and row["problems"] == [], (key, row)
        assert row["server_cpu_ms"]["shards"] > 0, row  # the test server runs on this machine
    for n in ("1 shard", "2 shards"):
        proxied = rows["scale-proxy", n]
        assert proxied["vs_baseline"] == round(proxied["ops_per_s"] / direct["ops_per_s"], 2)
        assert proxied["server_cpu_ms"]["proxy"] > 0, proxied
    assert direct["server_cpu_ms"]["proxy"] == 0  # no proxy in front of it
    placed = report["meta"]["placement"]
    assert placed["1 shard"] == [workloads.SPREAD_CODES]
    assert len(placed["2 shards"]) == 2 and sum(placed["2 shards"]) == workloads.SPREAD_CODES
    assert min(placed["2 shards"]) > 0  # the pools spread over both shards
    text = scale.summary([Row(**_fields(r)) for r in report["rows"]], placed, {})
    assert "  2 shards         2" in text and " / " in text


def _fields(row: dict) -> dict:
    return {k: v for k, v in row.items() if k != "giveup_rate"}


def test_the_scale_audit_sees_usage_that_does_not_match_the_clients(new_database):
    db = new_database()
    target = scale.Target(db, [db], "advisory", scale.DIRECT)
    assert scale._audit(target, 0) == []
    assert scale._audit(target, 2) == ["usage 0 != claimed-released 2"]


@pytest.mark.parametrize("value", ["3", "0", "x"])
def test_a_shard_count_that_is_not_a_power_of_two_is_a_usage_error(value, capsys):
    with pytest.raises(SystemExit) as exited:
        bench_main.parser().parse_args(["--shards", value])
    assert exited.value.code == 2
    assert "argument --shards: " in capsys.readouterr().err


def test_cache_coherence_is_timed_direct_and_through_the_proxy(admin_conninfo):
    """The API on each target sees a claim made by another client, through the change
    feed (through a proxy: its listener's session on the shard)."""
    with scale.targets(admin_conninfo, [1]) as found:
        delays = scale.coherence(found, 3)
    assert set(delays) == {"direct", "1 shard"}
    for figures in delays.values():
        assert 0 < figures["p50_ms"] <= figures["p95_ms"], delays
