"""`pgcapacity bench` (`make bench`): the matrix of workloads x lock modes x clients, with
baselines.

Without DATABASE_URL it starts a private PostgreSQL with fsync and synchronous commit on
(the durable settings users run with); with DATABASE_URL it creates a scratch database on
that server and drops it at the end. Progress goes to stderr, the table (or --json) to
stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict

import psycopg

from pgcapacity import installer, pgserver
from pgcapacity.argtypes import at_least
from pgcapacity.cli import describe_error
from pgcapacity_bench import http, scale, scratch, targets, workloads
from pgcapacity_bench.report import Row, add_ratios, as_json, by_round, ratios_of, row_key, table
from pgcapacity_bench.runner import Measurement, measure, publisher

DEFAULT_WORKLOADS = list(workloads.WORKLOADS)
COHERENCE_TRIALS = 20  # claims whose way to the API's cache is timed, per scale target


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="pgcapacity bench",
        description="Real concurrent clients against a real durable PostgreSQL: pgcapacity's "
        "workloads in every lock mode beside their baselines, as ratios (docs/benchmarks.md).",
    )
    add_arguments(p)
    return p


def main(argv: list[str] | None = None) -> int:
    """`pgcapacity bench ARGS` and `pgcapacity-bench ARGS`."""
    args = parser().parse_args(argv)
    try:
        return run(args)
    except psycopg.Error as err:
        print(f"pgcapacity bench: {describe_error(err)}", file=sys.stderr)
        # A failure of the bench's own statements (a row's set-up or audit) is a finding:
        # the detail and context say which processes and statement (a deadlock's cycle).
        for extra in (err.diag.message_detail, err.diag.context):
            if extra:
                print("  " + extra.replace("\n", "\n  "), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--seconds",
        type=at_least(0, float, exclusive=True),
        default=3.0,
        help="measured seconds per row (3)",
    )
    p.add_argument(
        "--warmup", type=at_least(0, float), default=1.0, help="unmeasured seconds per row (1)"
    )
    p.add_argument(
        "--clients", type=at_least(1), nargs="+", default=[1, 8, 32, 64], help="(1 8 32 64)"
    )
    p.add_argument(
        "--workloads",
        nargs="+",
        default=DEFAULT_WORKLOADS,
        choices=DEFAULT_WORKLOADS,
        metavar="NAME",
        help=f"subset of: {' '.join(DEFAULT_WORKLOADS)}",
    )
    p.add_argument(
        "--modes",
        nargs="+",
        default=list(workloads.LOCK_MODES),
        choices=workloads.LOCK_MODES,
        help="lock modes of the pgcapacity workloads (all three)",
    )
    p.add_argument(
        "--repeat",
        type=at_least(1),
        default=1,
        help="run the whole matrix N times, interleaved, and keep each row's median run",
    )
    p.add_argument(
        "--retries",
        type=at_least(0),
        default=0,
        help="client-side retries of a contended claim before giving up (0: the SQL "
        "function's own NOWAIT retries only)",
    )
    p.add_argument(
        "--publish-ms",
        type=at_least(0),
        default=50,
        help="call capacity.publish_changes() every N ms during the run, as a running API "
        "does (50; 0: never)",
    )
    p.add_argument(
        "--http",
        action="store_true",
        help="also drive the HTTP API (pgcapacity serve) with wrk: cached and uncached status, "
        "batch usage, claim+release",
    )
    p.add_argument(
        "--http-workers",
        type=at_least(1),
        nargs="+",
        default=sorted({1, os.cpu_count() or 1}),
        metavar="N",
        help="API worker processes (PGCAPACITY_WORKERS) of the HTTP rows, one set of rows per "
        "value (1 and one per CPU)",
    )
    p.add_argument(
        "--shards",
        type=_shard_count,
        nargs="+",
        default=[],
        metavar="N",
        help="also run spread claims through a PL/Proxy proxy over N shard databases, for "
        "each N (a power of two), beside the same claims direct on one database; all on "
        "this server, so the rows measure the proxy's cost (docs/sharding.md)",
    )
    p.add_argument("--json", action="store_true", help="print JSON instead of the table")


def _shard_count(text: str) -> int:
    n = at_least(1)(text)
    if n & (n - 1):
        raise argparse.ArgumentTypeError(f"{n} shards: PL/Proxy needs a power of two")
    return n


@contextmanager
def scratch_database(
    server_conninfo: str | None, connections: int = 0
) -> Iterator[tuple[str, str, str]]:
    """(conninfo of a fresh database with pgcapacity installed, server description, the
    server's conninfo) on the given server, else on DATABASE_URL's, else on a private
    durable one, started with room for `connections` more sessions than it allows anyway."""
    room = {"max_connections": str(int(pgserver.SERVER_SETTINGS["max_connections"]) + connections)}
    server = (
        pgserver.Server(server_conninfo, "given")
        if server_conninfo
        else pgserver.provide(durable=True, settings=room if connections else None)
    )
    try:
        pgserver.wait_ready(server.conninfo)
        with scratch.database(server.conninfo) as db:
            installer.migrate(db)
            yield db, server.kind, server.conninfo
    finally:
        server.stop()


def _server_facts(conn: psycopg.Connection, kind: str) -> dict:
    facts = {"server": kind, "cpus": os.cpu_count(), "machine": platform.machine()}
    facts["version"] = conn.execute("SHOW server_version").fetchone()[0]
    for setting in ("fsync", "synchronous_commit", "max_connections", "shared_buffers"):
        facts[setting] = conn.execute(f"SHOW {setting}").fetchone()[0]
    return facts


def _plan(args: argparse.Namespace) -> list[tuple[str, str | None, int]]:
    """Clients outermost so that each workload sits next to its baselines in time."""
    rows = []
    for clients in args.clients:
        for name in args.workloads:
            w = workloads.WORKLOADS[name]
            modes = [m for m in w.lock_modes if m is None or m in args.modes]
            rows += [(name, mode, clients) for mode in modes]
    return rows


def _progress(text: str, *, done: bool = False) -> None:
    if sys.stderr.isatty():
        print(f"\r\033[K{text}", end="\n" if done else "", file=sys.stderr, flush=True)
    elif done:
        print(text, file=sys.stderr, flush=True)


def run_row(db_conn, conns, name, mode, clients, args, label) -> Row:
    w = workloads.WORKLOADS[name]
    workloads.reset(db_conn, max(args.clients), w)
    tick = lambda ops: _progress(f"{label} {ops / args.seconds:>8.0f} ops/s so far")  # noqa: E731
    m = measure(
        conns[:clients],
        w.make_op(mode, args.retries),
        seconds=args.seconds,
        warmup=args.warmup,
        seed=hash((name, mode, clients)) & 0xFFFF,
        tick=tick,
    )
    problems = workloads.audit(db_conn, w, m) if w.audited else []
    return row_of(name, mode, clients, m, problems, audited=w.audited)


def row_of(
    name: str,
    mode: str | None,
    clients: int,
    m: Measurement,
    problems: list[str],
    *,
    audited: bool = True,
) -> Row:
    """The table row of a measurement: its figures, its audit's problems and the first
    unexpected errors."""
    errors = sum(v for k, v in m.tally.items() if k.startswith("error "))
    problems = problems + [k for k in m.tally if k.startswith("error ")][:3]
    return Row(
        workload=name,
        lock_mode=mode,
        clients=clients,
        seconds=m.seconds,
        ops=m.ops,
        ops_per_s=round(m.throughput, 1),
        p50_ms=m.percentile_ms(0.50),
        p95_ms=m.percentile_ms(0.95),
        p99_ms=m.percentile_ms(0.99),
        contention=m.tally["contention"],
        retries=m.tally["retries"],
        giveups=m.tally["giveup"],
        full=m.tally["full"],
        refused=m.tally["refused"],
        errors=errors,
        problems=problems,
        audited=audited,
        steal=m.steal,
    )


def run(args: argparse.Namespace, server_conninfo: str | None = None) -> int:
    plan = _plan(args)
    started = time.monotonic()
    rounds: list[list[Row]] = []  # the rows run in each --repeat round
    extra = scale.connections_needed(args.shards, max(args.clients)) if args.shards else 0
    with (
        scratch_database(server_conninfo, extra) as (db, kind, server_url),
        _scale_targets(server_url, args) as scaled,
    ):
        options = "-c lock_timeout=5000 -c application_name=pgcapacity-bench"
        with psycopg.connect(db, autocommit=True) as admin:
            meta = _server_facts(admin, kind) | {
                "seconds": args.seconds,
                "warmup": args.warmup,
                "repeat": args.repeat,
                "retries": args.retries,
                "publish_ms": args.publish_ms,
            }
            workloads.install(admin)
            conns = [
                psycopg.connect(db, autocommit=True, options=options)
                for _ in range(max(args.clients))
            ]
            stop_publishing = publisher(db, args.publish_ms)
            try:
                total = len(plan) * args.repeat
                for r in range(args.repeat):
                    rounds.append([])
                    for i, (name, mode, clients) in enumerate(plan):
                        label = (
                            f"[{r * len(plan) + i + 1:>3}/{total}] {name:<13}{mode or '-':<9}"
                            f"{clients:>3} clients"
                        )
                        row = run_row(admin, conns, name, mode, clients, args, label)
                        rounds[-1].append(row)
                        verdict = "" if not row.problems else "  FAIL: " + "; ".join(row.problems)
                        _progress(f"{label} {row.ops_per_s:>8.0f} ops/s{verdict}", done=True)
                    if args.http:  # in every round too: the HTTP rows are medians like the rest
                        rounds[-1] += _http_rows(db, args, admin, conns)
                    if scaled:
                        rounds[-1] += scale.rows(scaled, args, _progress, row_of, server_url)
                meta["placement"] = scale.placements(scaled)  # while the databases exist
                if scaled and args.http:
                    _progress("[scale] cache coherence: a claim by another client", done=True)
                    meta["coherence"] = scale.coherence(scaled, COHERENCE_TRIALS)
            finally:
                stop_publishing()
                for c in conns:
                    c.close()
    baseline_of = {n: w.baseline for n, w in workloads.WORKLOADS.items()}
    baseline_of |= http.SQL_COUNTERPART | scale.BASELINE_OF
    # Before _median(), which gives the row it keeps the median throughput.
    per_round = [ratios_of(each, baseline_of) for each in rounds] if len(rounds) > 1 else []
    runs: dict[tuple, list[Row]] = {}  # each row's runs, one per round
    for each in rounds:
        for row in each:
            runs.setdefault(row_key(row), []).append(row)
    rows = [_median(v) for v in runs.values()]
    add_ratios(rows, baseline_of, per_round)
    order = DEFAULT_WORKLOADS + http.HTTP_TABLE + scale.SCALE_TABLE
    rows.sort(key=lambda r: (order.index(r.workload), r.lock_mode or "", r.clients))
    meta["elapsed_s"] = round(time.monotonic() - started, 1)
    found = targets.verdicts(rows)
    if args.json:
        report = as_json(meta, rows) | {"targets": [asdict(v) for v in found]}
        print(json.dumps(report, indent=2))
    else:
        print(_title(meta))
        print(table(rows))
        scaled_text = scale.summary(rows, meta["placement"], meta.get("coherence", {}))
        for text in (by_round(rows), scaled_text, targets.summary(found)):
            if text:
                print("\n" + text)
    return 1 if any(r.problems for r in rows) else 0


@contextmanager
def _scale_targets(server_url: str, args: argparse.Namespace) -> Iterator[list[scale.Target]]:
    """The scale rows' databases (none without --shards), on a server with room for them."""
    if not args.shards:
        yield []
        return
    # Beside the scale rows' sessions: the other rows' clients (kept open), admin, publisher.
    needed = scale.connections_needed(args.shards, max(args.clients)) + max(args.clients) + 10
    with psycopg.connect(server_url) as conn:
        allowed = int(conn.execute("SHOW max_connections").fetchone()[0])
        plproxy = conn.execute(
            "SELECT 1 FROM pg_available_extensions WHERE name = 'plproxy'"
        ).fetchone()
    if not plproxy:
        raise SystemExit(
            "pgcapacity bench --shards: the server has no PL/Proxy (Debian postgresql-15-plproxy)"
        )
    if allowed < needed:
        raise SystemExit(
            f"pgcapacity bench --shards: {max(args.clients)} clients over {max(args.shards)}"
            f" shards need about {needed} connections; the server allows {allowed}"
        )
    _progress("[scale] creating the direct database and the clusters", done=True)
    with scale.targets(server_url, args.shards) as found:
        yield found


def _http_rows(db: str, args: argparse.Namespace, admin, conns) -> list[Row]:
    """The HTTP rows: a server with the cache for the cached status, one without for the rest
    (and beside it, the direct SQL claims each http-claim row is compared with)."""
    rows = []
    for workers in args.http_workers:
        rows += _http_rows_of(db, args, workers, admin, conns)
    return rows


def _http_rows_of(db: str, args: argparse.Namespace, workers: int, admin, conns) -> list[Row]:
    rows = []
    # The same database connections in all, whatever the number of workers.
    pool = -(-min(max(args.clients), 20) // workers)
    config = f"{workers} worker" + ("s" if workers > 1 else "")
    for cache_ttl, names in ((1000, ["http-status-cached"]), (0, http.HTTP_WORKLOADS[1:])):
        with http.api_server(db, cache_ttl_ms=cache_ttl, pool_max=pool, workers=workers) as base:
            for clients in args.clients:
                for name in names:
                    if name == "http-claim":
                        rows.append(_sql_beside(admin, conns, clients, args, config))
                    with psycopg.connect(db, autocommit=True) as conn:
                        workloads.reset(conn, max(args.clients))
                    row = http.run_wrk(base, name, clients, args.seconds)
                    row.lock_mode = config
                    if row.audited:
                        with psycopg.connect(db) as conn:
                            row.problems += workloads.invariant_problems(conn)
                    _progress(
                        f"[http] {name:<19}{config:<10}{clients:>3} clients"
                        f" {row.ops_per_s:>8.0f} ops/s",
                        done=True,
                    )
                    rows.append(row)
    return rows


def _sql_beside(admin, conns, clients: int, args: argparse.Namespace, config: str) -> Row:
    """http.SQL_BESIDE_CLAIM: the `spread` pairs in direct SQL, default lock mode, run while
    the API of `config` is up (and idle), labelled with that API's mode."""
    label = f"[http] {http.SQL_BESIDE_CLAIM:<19}{config:<10}{clients:>3} clients"
    row = run_row(admin, conns, "spread", "advisory", clients, args, label)  # the default mode
    row.workload, row.lock_mode = http.SQL_BESIDE_CLAIM, config
    _progress(f"{label} {row.ops_per_s:>8.0f} ops/s", done=True)
    return row


def _median(candidates: list[Row]) -> Row:
    """The run with the median throughput (its latencies and steal belong to that same
    run); `candidates` are in round order."""
    ordered = sorted(candidates, key=lambda r: r.ops_per_s)
    chosen = ordered[(len(ordered) - 1) // 2]
    if len(candidates) > 1:
        chosen.steal_rounds = [r.steal for r in candidates]
        chosen.problems = sorted({p for r in candidates for p in r.problems})
        chosen.ops_per_s = round(statistics.median(r.ops_per_s for r in candidates), 1)
    return chosen


def _title(meta: dict) -> str:
    return (
        f"pgcapacity bench: PostgreSQL {meta['version']} ({meta['server']}), {meta['cpus']} CPUs, "
        f"fsync={meta['fsync']}, synchronous_commit={meta['synchronous_commit']}, "
        f"publish every {meta['publish_ms']} ms; {meta['seconds']:g} s per row after {meta['warmup']:g} s "
        f"warm-up, median of {meta['repeat']}; {meta['elapsed_s']} s in all.\n"
        "ops/s: successful ops (claim+release pairs; reads: check + usage_batch); latencies "
        "in ms per op; give-up: share of attempts abandoned to contention; x base: ops/s over "
        "the workload's baseline at the same clients; x raw: over the raw-update pair (with "
        "several rounds: the median of the rounds' ratios, listed below the table); mode "
        "of an HTTP row: the API's worker processes; sql-claim: the spread pairs in direct SQL "
        "just before http-claim, beside that API (http-claim's x base); steal: share of this "
        "machine's CPU time a hypervisor took during the row's (median) run, which slows "
        "that run whatever it measures.\n"
    )
