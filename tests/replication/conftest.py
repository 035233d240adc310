"""A primary and its streaming standby, started from the local PostgreSQL binaries, with
pgcapacity installed on the primary (and so, by replication, on the standby)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass

import psycopg
import pytest

from pgcapacity import installer, pgserver
from tests.support import wait_for

DATABASE = "pgcapacity"


@dataclass
class Pair:
    primary: pgserver.Server
    standby: pgserver.Server
    primary_url: str
    standby_url: str

    def failover_url(self) -> str:
        """One multi-host connection string naming both servers: libpq (psycopg) tries
        them in order and keeps the one that accepts writes."""
        hosts = (self.primary.cluster, self.standby.cluster)
        return (
            f"host=127.0.0.1,127.0.0.1 port={hosts[0].port},{hosts[1].port} user=postgres"
            f" dbname={DATABASE} target_session_attrs=read-write connect_timeout=2"
        )


def replay_caught_up(pair: Pair) -> bool:
    """Whether the standby has replayed everything the primary wrote so far."""
    with psycopg.connect(pair.primary_url) as conn:
        written = conn.execute("SELECT pg_current_wal_lsn()").fetchone()[0]
    with psycopg.connect(pair.standby_url) as conn:
        return conn.execute("SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", (written,)).fetchone()[
            0
        ]


@contextlib.contextmanager
def replicated(*, synchronous: bool) -> Iterator[Pair]:
    """A primary and one hot standby; with `synchronous`, a commit returns only once the
    standby has flushed it (synchronous_standby_names, synchronous_commit = on)."""
    if os.environ.get("PGCAPACITY_SERVER") == "embedded":
        pytest.skip(
            "replication needs the local PostgreSQL binaries (the wheel has no pg_basebackup)"
        )
    bindir = pgserver.find_bindir()
    if bindir is None:  # a missing install fails, as for pg_cron
        raise RuntimeError(
            "replication needs the local PostgreSQL server binaries: run `make setup`"
        )
    settings = pgserver.PRIMARY_SETTINGS | ({"synchronous_commit": "on"} if synchronous else {})
    primary = pgserver.start_local(bindir, settings=settings)
    standby = None
    try:
        primary_url = pgserver.ensure_database(primary.conninfo, DATABASE)
        installer.migrate(primary_url)
        standby = pgserver.start_standby(primary, "standby1")
        pair = Pair(
            primary, standby, primary_url, pgserver.with_database(standby.conninfo, DATABASE)
        )
        pgserver.wait_ready(pair.standby_url)
        if synchronous:  # only now: until the standby streams, every commit would wait
            with psycopg.connect(primary.conninfo, autocommit=True) as conn:
                conn.execute("ALTER SYSTEM SET synchronous_standby_names = 'standby1'")
                conn.execute("SELECT pg_reload_conf()")
                state = "SELECT sync_state FROM pg_stat_replication"
                assert wait_for(lambda: conn.execute(state).fetchall() == [("sync",)])
        yield pair
    finally:
        if standby is not None:
            standby.stop()
        primary.stop()
