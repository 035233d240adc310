"""The `pgcapacity` command line: install, inspect and maintain the SQL core."""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg

from pgcapacity import __version__, cluster, installer, pgserver
from pgcapacity.argtypes import at_least
from pgcapacity.db import named_call


def _database_url() -> str:
    """DATABASE_URL, else `make run`'s embedded database in ./.pgdata (joined if it runs,
    started for this command if not)."""
    url = os.environ.get("DATABASE_URL")
    if url:
        return url
    if not pgserver.has_run_database():
        sys.exit(
            "pgcapacity: DATABASE_URL is not set (e.g. postgresql://user@host/dbname),"
            f" and there is no `make run` database in ./{pgserver.RUN_DIR}"
        )
    print(f"pgcapacity: using make run's database in ./{pgserver.RUN_DIR}", file=sys.stderr)
    # The wheel stops a server it started when its last user exits: this process too.
    _, url = pgserver.run_database()
    return url


def cmd_sql(_: argparse.Namespace) -> int:
    sys.stdout.write(installer.bundle())
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    outcomes = installer.migrate(_database_url())
    changed = [(name, what) for name, what in outcomes if what != "unchanged"]
    for name, what in changed if not args.verbose else outcomes:
        print(f"{what:>10}  {name}")
    print(
        f"pgcapacity {__version__}: {len(changed)} step(s) applied, "
        f"{len(outcomes) - len(changed)} unchanged"
    )
    return 0


def cmd_status(_: argparse.Namespace) -> int:
    st = installer.status(_database_url())
    print(f"package version:   {st.package_version}")
    print(f"installed version: {st.installed_version or 'not installed'}")
    for name in st.pending:
        print(f"pending:           {name}")
    for name in st.unknown:
        print(f"unknown (newer):   {name}")
    print("up to date" if st.up_to_date else "needs `pgcapacity migrate`")
    return 0 if st.up_to_date else 1


RECONNECT_MAX_SECONDS = 60


def _repeat(args: argparse.Namespace, once) -> int:
    """Runs once(conn) now and, with --every N, every N seconds for ever. In the loop a
    lost connection (server restart, failover, network) is reopened with capped backoff
    instead of ending the command; any other error ends it (exit 1)."""
    url = _database_url()
    conn: psycopg.Connection | None = None
    delay = 1.0
    try:
        while True:
            try:
                if conn is None or conn.closed:
                    conn = psycopg.connect(url, autocommit=True)
                once(conn)
                delay = 1.0
            except psycopg.OperationalError as err:
                if not args.every:
                    raise
                print(
                    f"pgcapacity {args.command}: {describe_error(err)}; "
                    f"reconnecting in {delay:g} s",
                    file=sys.stderr,
                    flush=True,
                )
                if conn is not None:
                    conn.close()
                time.sleep(delay)
                delay = min(delay * 2, RECONNECT_MAX_SECONDS)
                continue
            if not args.every:
                return 0
            time.sleep(args.every)
    finally:
        if conn is not None:
            conn.close()


def cmd_expire_idle(args: argparse.Namespace) -> int:
    query, params = named_call("expire_idle_claims", idle=args.idle, batch_size=args.batch_size)

    def once(conn: psycopg.Connection) -> None:
        total = 0
        while True:
            expired, _, _, more = conn.execute(query, params).fetchone()
            total += expired
            if not more:
                break
        print(f"expired {total} idle claim(s)", flush=True)

    return _repeat(args, once)


def cmd_refresh(args: argparse.Namespace) -> int:
    def once(conn: psycopg.Connection) -> None:
        refreshed, at, reason = conn.execute(
            "SELECT * FROM capacity.refresh_dashboard(%s)", (args.force,)
        ).fetchone()
        print(
            f"dashboard {'refreshed' if refreshed else 'unchanged'} ({reason}), as of {at}",
            flush=True,
        )

    return _repeat(args, once)


def cmd_psql(args: argparse.Namespace) -> int:
    """psql on the database: the embedded wheel's own psql for `make run`'s database (a
    system psql may be older than its server), else the psql on PATH."""
    url = _database_url()
    psql = shutil.which("psql") if os.environ.get("DATABASE_URL") else None
    bindir = pgserver.embedded_bindir()
    if psql is None and bindir is not None:
        psql = str(bindir / "psql")
    if psql is None:
        print("pgcapacity psql: no psql found (install PostgreSQL's client)", file=sys.stderr)
        return 2
    # Ctrl-C belongs to psql (it cancels the query); this process waits for it to exit.
    with subprocess.Popen(
        [psql, url, *args.extra],
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    ) as child:
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            return child.wait()
        finally:
            signal.signal(signal.SIGINT, previous)


def cmd_bench(args: argparse.Namespace) -> int:
    """Runs the benchmark, which is a package of its own (bench/ in the repository) so
    that the product does not ship its harness."""
    try:
        from pgcapacity_bench.main import main as bench
    except ImportError:
        print(
            "pgcapacity bench: the benchmark is not installed; in a checkout run `make bench`,"
            " or `pip install ./bench`",
            file=sys.stderr,
        )
        return 2
    return bench(args.extra)


def cmd_serve(args: argparse.Namespace) -> int:
    from pgcapacity.serve import serve  # the web stack is only imported when serving
    from pgcapacity.settings import SettingsError

    try:
        return serve(
            embedded_dir=Path(args.embedded) if args.embedded else None,
            migrate=args.migrate,
            demo_token=args.demo_token,
            log_level=args.log_level,
        )
    except SettingsError as err:
        print(f"pgcapacity serve: {err}", file=sys.stderr)
        return 2


def cmd_cluster(args: argparse.Namespace) -> int:
    """`cluster install|status|sql`: a proxy database over shard databases (PL/Proxy)."""
    try:
        if args.action == "install":
            for line in cluster.install(args.proxy, args.shard):
                print(line)
        elif args.action == "sql":
            cluster.check_count(args.shard)
            sys.stdout.write(cluster.proxy_script(args.proxy, args.shard))
        else:
            return _print_cluster_status(args.proxy)
    except cluster.ClusterError as err:
        print(f"pgcapacity cluster {args.action}: {err}", file=sys.stderr)
        return 2
    return 0


def _print_cluster_status(proxy: str) -> int:
    shards = cluster.status(proxy)
    print(f"{'shard':>5}  {'version':<8} {'codes':>7} {'units in use':>12} {'claims':>7}  server")
    for s in shards:
        if s.error:
            print(f"{s.shard:>5}  {'-':<8} {'-':>7} {'-':>12} {'-':>7}  {s.server}: {s.error}")
        else:
            print(
                f"{s.shard:>5}  {s.version:<8} {s.codes:>7} {s.units_in_use:>12}"
                f" {s.active_claims:>7}  {s.server}"
            )
    healthy = all(s.error is None and s.version == __version__ for s in shards)
    return 0 if healthy else 1


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="pgcapacity", description=__doc__)
    p.add_argument("--version", action="version", version=f"pgcapacity {__version__}")
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("sql", help="print the install SQL (apply with psql -v ON_ERROR_STOP=1 -f)")
    m = sub.add_parser("migrate", help="install or upgrade the SQL in DATABASE_URL")
    m.add_argument("-v", "--verbose", action="store_true", help="also list unchanged steps")
    sub.add_parser("status", help="compare DATABASE_URL with this version (exit 1 if behind)")
    e = sub.add_parser("expire-idle", help="end idle claims once, or every N seconds")
    e.add_argument(
        "--idle", help="idle interval, e.g. '30 minutes' (default: expire_idle_claims' own)"
    )
    e.add_argument("--batch-size", type=at_least(1), help="claims per call (default: the SQL's)")
    e.add_argument("--every", type=at_least(0, float), default=0, help="repeat every N seconds")
    r = sub.add_parser("refresh", help="refresh capacity.dashboard if stale (for cron users)")
    r.add_argument("--force", action="store_true", help="refresh even if nothing changed")
    r.add_argument("--every", type=at_least(0, float), default=0, help="repeat every N seconds")
    sub.add_parser(
        "psql",
        add_help=False,  # every argument is psql's
        help="psql on DATABASE_URL, or on make run's database (arguments go to psql)",
    )
    v = sub.add_parser("serve", help="serve the HTTP API (PGCAPACITY_* settings, see README)")
    v.add_argument(
        "--embedded", metavar="DIR", help="without DATABASE_URL: embedded PostgreSQL in DIR"
    )
    v.add_argument("--migrate", action="store_true", help="install or upgrade the SQL first")
    v.add_argument(
        "--demo-token",
        action="store_true",
        help="generate an admin token (kept in DIR/admin-token) if none is set",
    )
    v.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    c = sub.add_parser("cluster", help="a proxy database over shard databases (PL/Proxy)")
    actions = c.add_subparsers(dest="action", required=True)
    ci = actions.add_parser(
        "install", help="install or upgrade every shard and the proxy (idempotent)"
    )
    cs = actions.add_parser("sql", help="print the proxy's install SQL for psql")
    for a in (ci, cs):
        a.add_argument(
            "--shard",
            action="append",
            required=True,
            metavar="URL",
            help="a shard database, in shard order (repeat: a power of two of them)",
        )
        a.add_argument("--proxy", required=True, metavar="URL", help="the proxy database")
    st = actions.add_parser("status", help="each shard's version, codes and usage")
    st.add_argument("--proxy", required=True, metavar="URL", help="the proxy database")
    sub.add_parser(
        "bench",
        add_help=False,  # its options, --help included, are the benchmark's own
        help="benchmark workloads x lock modes x clients against the baselines "
        "(the pgcapacity-bench package; `pgcapacity bench --help`)",
    )
    return p


COMMANDS = {
    "sql": cmd_sql,
    "migrate": cmd_migrate,
    "status": cmd_status,
    "expire-idle": cmd_expire_idle,
    "refresh": cmd_refresh,
    "serve": cmd_serve,
    "psql": cmd_psql,
    "bench": cmd_bench,
    "cluster": cmd_cluster,
}
PASS_THROUGH = {"bench", "psql"}  # commands whose unknown arguments are another tool's


def describe_error(err: psycopg.Error) -> str:
    """The server's message and hint, without the CONTEXT lines of the statement that
    failed; a connection failure (no server message) as psycopg words it."""
    message = err.diag.message_primary
    if not message:
        return str(err)
    return message + (f"\n  hint: {err.diag.message_hint}" if err.diag.message_hint else "")


def main(argv: list[str] | None = None) -> int:
    p = parser()
    args, extra = p.parse_known_args(argv)
    if args.command in PASS_THROUGH:
        args.extra = extra
    elif extra:
        p.error(f"unrecognized arguments: {' '.join(extra)}")
    try:
        return COMMANDS[args.command](args)
    except psycopg.Error as err:
        print(f"pgcapacity {args.command}: {describe_error(err)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
