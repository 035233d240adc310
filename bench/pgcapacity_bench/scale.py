"""The scale rows (`--shards 1 2 4`): spread claims direct on one pgcapacity database and
through a PL/Proxy proxy over N shard databases (docs/sharding.md), side by side.

Every database lives on the bench's one server, so on one machine these rows measure
what the proxy costs, not what sharding gains: the shards share the same CPUs and disk.
The model in docs/benchmarks.md turns the measured cost into the gain with shards on
machines of their own.

Each target holds the same 10 000 spread codes, in SCALE_POOLS pools so that placement by
pool spreads them evenly over the shards, and runs the same op as the `spread` workload.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass

import httpx
import psycopg
from psycopg.conninfo import conninfo_to_dict

from pgcapacity import cluster, installer
from pgcapacity_bench import backendcpu, http, scratch, workloads
from pgcapacity_bench.report import Row
from pgcapacity_bench.runner import measure, publisher

DIRECT = "scale-direct"
PROXY = "scale-proxy"
SCALE_TABLE = [DIRECT, PROXY]
BASELINE_OF = {DIRECT: None, PROXY: DIRECT}
# Enough pools that hashing them over 4 shards leaves each about a quarter of the codes.
SCALE_POOLS = 256
MODE = "advisory"  # the default lock mode, as an application calls claim()


def connections_needed(shards: list[int], clients: int) -> int:
    """Server connections of the scale rows at their peak: the clients' sessions on the
    proxy and PL/Proxy's session from each of them to every shard."""
    return clients * (1 + max(shards, default=0))


@dataclass
class Target:
    """Where the clients connect (a proxy or the direct database), the databases that hold
    the claims (the shards, or the direct database itself), and the row's mode label."""

    url: str
    shards: list[str]
    label: str
    workload: str


def codes() -> list[dict]:
    return [
        {
            "code": workloads.spread_code(i),
            "max_uses": 1000,
            "pool": f"bench-scale-{i % SCALE_POOLS:03d}",
        }
        for i in range(workloads.SPREAD_CODES)
    ]


def _shard_label(n: int) -> str:
    return f"{n} shard" + ("s" if n > 1 else "")


@contextmanager
def targets(server_url: str, shard_counts: list[int]) -> Iterator[list[Target]]:
    """The direct database and one cluster per shard count, each a set of scratch
    databases on the server, codes in place; all dropped at the end."""
    with ExitStack() as stack:
        make = lambda: stack.enter_context(scratch.database(server_url))  # noqa: E731
        direct = make()
        installer.migrate(direct)
        _upsert_codes(direct)
        found = [Target(direct, [direct], MODE, DIRECT)]
        for n in shard_counts:
            shards = [make() for _ in range(n)]
            proxy = make()
            cluster.install(proxy, shards)
            _upsert_codes(proxy)
            found.append(Target(proxy, shards, _shard_label(n), PROXY))
        yield found


def _upsert_codes(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SELECT capacity.upsert_codes(%s::jsonb)", (json.dumps(codes()),))


def placements(found: list[Target]) -> dict[str, list[int]]:
    """How many of the spread codes each shard of each cluster holds, by cluster label."""
    counts: dict[str, list[int]] = {}
    for target in found:
        if target.workload != PROXY:
            continue
        for url in target.shards:
            with psycopg.connect(url) as conn:
                n = conn.execute("SELECT count(*) FROM capacity.codes").fetchone()[0]
            counts.setdefault(target.label, []).append(n)
    return counts


def _reset(target: Target) -> None:
    """Between rows, on every shard: no claims or history, vacuumed tables."""
    for url in target.shards:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("""
                TRUNCATE capacity.claims, capacity.events, capacity.holders,
                         capacity.pending_changes, capacity.pool_activity""")
            conn.execute("UPDATE capacity.codes SET usage_count = 0 WHERE usage_count <> 0")
            conn.execute("SELECT capacity.reconcile(true)")
            for table in ("capacity.codes", "capacity.code_slots", "capacity.holders"):
                conn.execute(f"VACUUM ANALYZE {table}")


def _audit(target: Target, outstanding: int) -> list[str]:
    """Usage through the target equals units claimed minus released, and every shard's
    invariants hold."""
    with psycopg.connect(target.url) as conn:
        used = conn.execute(
            "SELECT coalesce(sum(usage_count), 0) FROM capacity.code_usage"
        ).fetchone()[0]
    problems = [] if used == outstanding else [f"usage {used} != claimed-released {outstanding}"]
    for shard, url in enumerate(target.shards):
        with psycopg.connect(url) as conn:
            broken = workloads.invariant_problems(conn)
        problems += [f"shard {shard}: {p}" for p in broken] if len(target.shards) > 1 else broken
    return problems


def rows(
    found: list[Target],
    args: argparse.Namespace,
    progress: Callable[..., None],
    row_of: Callable[..., Row],
    server_url: str,
) -> list[Row]:
    """One round of the scale rows: every target at every client count. `row_of(workload,
    mode, clients, measurement, problems)` makes the table row, as for the other rows;
    on a server on this machine each row also gets the CPU its backends spent per op, the
    proxy's and the shards' apart."""
    made = []
    options = "-c lock_timeout=5000 -c application_name=pgcapacity-bench"
    with ExitStack() as stack:
        sampler = stack.enter_context(psycopg.connect(server_url, autocommit=True))
        if not backendcpu.is_local(sampler):
            sampler = None
        for target in found:
            conns = [
                psycopg.connect(target.url, autocommit=True, options=options)
                for _ in range(max(args.clients))
            ]
            stop_publishing = publisher(target.url, args.publish_ms)
            try:
                for c in conns:  # PL/Proxy opens its session to each shard at first use
                    c.execute("SELECT capacity.version()")
                for clients in args.clients:
                    made.append(_row(target, conns[:clients], args, progress, row_of, sampler))
            finally:
                stop_publishing()
                for c in conns:
                    c.close()
    return made


def _row(target, conns, args, progress, row_of, sampler) -> Row:
    _reset(target)
    label = f"[scale] {target.workload:<14}{target.label:<9}{len(conns):>3} clients"
    databases = [_dbname(u) for u in {target.url, *target.shards}]
    m = measure(
        conns,
        workloads.WORKLOADS["spread"].make_op(MODE, args.retries),
        seconds=args.seconds,
        warmup=args.warmup,
        seed=hash((target.workload, target.label, len(conns))) & 0xFFFF,
        tick=lambda ops: progress(f"{label} {ops / args.seconds:>8.0f} ops/s so far"),
        probe=(lambda: backendcpu.sample(sampler, databases)) if sampler else None,
    )
    problems = _audit(target, m.effects["claimed"] - m.effects["released"])
    row = row_of(target.workload, target.label, len(conns), m, problems)
    if m.probed and m.ops:
        spent = backendcpu.spent_ms(*m.probed)
        if spent:
            shards = {_dbname(u) for u in target.shards}
            row.server_cpu_ms = {
                "proxy": round(sum(v for d, v in spent.items() if d not in shards) / m.ops, 3),
                "shards": round(sum(v for d, v in spent.items() if d in shards) / m.ops, 3),
            }
    verdict = "" if not problems else "  FAIL: " + "; ".join(problems)
    progress(f"{label} {row.ops_per_s:>8.0f} ops/s{verdict}", done=True)
    return row


def _dbname(url: str) -> str:
    return conninfo_to_dict(url)["dbname"]


def summary(
    rows: list[Row], placed: dict[str, list[int]], delays: dict[str, dict[str, float]]
) -> str:
    """Under the table: how the scale rows' codes are placed, the CPU a claim+release
    costs the shards and the proxy (a server on this machine only), and the model those
    figures give for shards on machines of their own ('' without scale rows)."""
    if not placed:
        return ""
    balance = {label: _balance(counts) for label, counts in placed.items()}
    lines = [
        f"Scale rows: {workloads.SPREAD_CODES} spread codes in {SCALE_POOLS} pools, placed by"
        " pool; server CPU ms per claim+release, in the shards' and the proxy's backends:",
        f"  {'target':<10}{'clients':>8}{'shards ms':>11}{'proxy ms':>10}{'proxy/shards':>14}"
        f"{'balance':>9}  codes per shard",
    ]
    for r in rows:
        if r.workload not in SCALE_TABLE:
            continue
        cpu = r.server_cpu_ms or {}
        shards, proxy = cpu.get("shards"), cpu.get("proxy")
        share = proxy / shards if r.workload == PROXY and proxy and shards else None
        codes = balance.get(r.lock_mode, (None, ""))
        lines.append(
            f"  {'direct' if r.workload == DIRECT else r.lock_mode:<10}{r.clients:>8}"
            f"{_figure(shards):>11}{_figure(proxy if r.workload == PROXY else None):>10}"
            f"{_figure(share, '.2f'):>14}{_figure(codes[0], '.2f'):>9}  {codes[1]}"
        )
    lines.append(
        "With each shard on a machine of its own, k shards take about k x balance x one"
        " server's claims/s, and the proxies need about proxy/shards of a shard's CPU per"
        " shard (docs/sharding.md)."
    )
    if delays:
        lines.append(
            "A claim by another client reaches the API's cache (change feed; through a proxy,"
            " the listener's session on each shard) in: "
            + "; ".join(
                f"{k} p50 {v['p50_ms']} ms, p95 {v['p95_ms']} ms" for k, v in delays.items()
            )
        )
    return "\n".join(lines)


def _balance(counts: list[int]) -> tuple[float, str]:
    """(mean over the busiest shard's codes, the counts): 1.00 is perfectly even."""
    shown = " / ".join(f"{n:,}".replace(",", " ") for n in counts)
    return (sum(counts) / len(counts) / max(counts) if max(counts) else 1.0), shown


def _figure(value: float | None, spec: str = ".3f") -> str:
    return "-" if value is None else format(value, spec)


def coherence(found: list[Target], trials: int) -> dict[str, dict[str, float]]:
    """How long a claim made by another client takes to reach an API's cache, on each
    target: an API with a long cache TTL (so only the change feed refreshes it) serves a
    code's status, a direct SQL claim is made on it, and the status is polled until it
    shows the claim. Through a proxy the change reaches the API by its listener's session
    on each shard. The delay's median and 95th percentile in ms, by target label."""
    found_delays = {}
    for target in found:
        label = "direct" if target.workload == DIRECT else target.label
        with (
            http.api_server(target.url, cache_ttl_ms=600_000, pool_max=2) as base,
            httpx.Client(base_url=base, timeout=10) as api,
            psycopg.connect(target.url, autocommit=True) as conn,
        ):
            _reset(target)
            _propagation_ms(api, conn, workloads.spread_code(0), "warm-up", 30.0)  # listener up
            delays = sorted(
                _propagation_ms(api, conn, workloads.spread_code(i), f"coherence-{i}", 5.0)
                for i in range(1, trials + 1)
            )
        found_delays[label] = {
            "p50_ms": round(delays[len(delays) // 2], 1),
            "p95_ms": round(delays[min(len(delays) - 1, int(0.95 * len(delays)))], 1),
        }
    return found_delays


def _propagation_ms(
    api: httpx.Client, conn: psycopg.Connection, code: str, holder: str, timeout: float
) -> float:
    """Claims `code` in SQL while the API has its status cached; ms until the API shows it."""
    path = f"/v1/codes/{code}"
    before = api.get(path).json()["usage_count"]
    claim = conn.execute(
        "SELECT claim_id, token FROM capacity.claim(%s, %s)", (code, holder)
    ).fetchone()
    began = time.perf_counter()
    try:
        while api.get(path).json()["usage_count"] == before:
            if time.perf_counter() - began > timeout:
                raise RuntimeError(f"the API did not see a claim on {code} in {timeout:g} s")
            time.sleep(0.001)
        return (time.perf_counter() - began) * 1000
    finally:
        conn.execute("SELECT capacity.release(%s, %s)", claim)
