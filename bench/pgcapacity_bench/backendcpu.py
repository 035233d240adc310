"""CPU time of a local server's client backends, by database (/proc/<pid>/stat, Linux):
what the scale rows split into the proxy's share and the shards' share of a claim.

Only for a server on this machine (is_local): another host's backend pids mean nothing
here.
"""

from __future__ import annotations

import os
from pathlib import Path

import psycopg

_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _ticks(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # After "pid (comm) ": state is field 3, utime and stime fields 14 and 15.
    fields = stat[stat.rindex(")") + 2 :].split()
    return int(fields[11]) + int(fields[12])


def is_local(conn: psycopg.Connection) -> bool:
    """Whether the connection's server runs on this machine: reached over a Unix socket or
    loopback, and its backend's pid here is a postgres process."""
    addr, pid = conn.execute("SELECT host(inet_server_addr()), pg_backend_pid()").fetchone()
    if addr not in (None, "127.0.0.1", "::1"):
        return False
    try:
        return Path(f"/proc/{pid}/comm").read_text().startswith("postgres")
    except OSError:
        return False


def sample(conn: psycopg.Connection, databases: list[str]) -> dict[str, int] | None:
    """CPU ticks the client backends of each database have used so far; None when /proc
    cannot tell."""
    found: dict[str, int] = dict.fromkeys(databases, 0)
    rows = conn.execute(
        "SELECT pid, datname FROM pg_stat_activity"
        " WHERE backend_type = 'client backend' AND datname = ANY(%s)",
        (databases,),
    ).fetchall()
    for pid, datname in rows:
        ticks = _ticks(pid)
        if ticks is None:
            return None
        found[datname] += ticks
    return found


def spent_ms(before: dict[str, int] | None, after: dict[str, int] | None) -> dict[str, float]:
    """CPU ms each database's backends spent between two samples ({} when either is
    missing). The backends must live through both: the scale rows open their sessions,
    and PL/Proxy's behind them, before the first sample."""
    if before is None or after is None:
        return {}
    return {db: max(0, after[db] - before.get(db, 0)) * 1000 / _TICKS for db in after}
