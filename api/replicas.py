"""Reads from streaming standbys (PGCAPACITY_READ_URL) while they are fresh enough
(docs/scaling.md, "Read replicas").

Status checks, batch usage and the dashboard may be served by a standby; claims, releases
and everything else go to the primary. A standby serves only while its measured staleness
is at most PGCAPACITY_MAX_REPLICA_LAG_MS; otherwise, and whenever it cannot be measured
(the standby or the primary unreachable, or the server no longer in recovery), reads go
to the primary.

Staleness is measured, not estimated from replay timestamps (which grow on an idle
primary): every SAMPLE_MS the primary's WAL position is noted with the time it was asked
for, then each standby's replayed position is read. The newest noted position a standby
has replayed was reached by the primary no later than when it was noted, so everything
committed before that time is visible on the standby: the standby is at most `now - that
time` behind. On an idle primary that is one sampling round trip.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections import deque
from dataclasses import dataclass, field

import psycopg
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from pgcapacity.db import fetch_one

log = logging.getLogger("pgcapacity.api")

SAMPLE_MS = 100
# A standby this far behind (in samples kept) is reported as at least that old.
MAX_SAMPLES = 6000


@dataclass
class Replica:
    name: str
    pool: AsyncConnectionPool
    lag_ms: float | None = None  # None: not known, the replica does not serve
    error: str | None = None
    samples: deque = field(default_factory=lambda: deque(maxlen=MAX_SAMPLES))

    def observe(self, replayed: int, now: float) -> None:
        """The staleness bound from the replayed WAL position (see the module docstring)."""
        newest = None
        while self.samples and self.samples[0][1] <= replayed:
            newest = self.samples.popleft()
        if newest is not None:
            self.samples.appendleft(newest)  # still the bound until a newer one is replayed
            self.lag_ms = (now - newest[0]) * 1000
        elif self.samples:  # behind every position kept: at least as old as the oldest
            self.lag_ms = (now - self.samples[0][0]) * 1000
        self.error = None


class ReadRouting:
    """Which pool serves check, batch usage and the dashboard."""

    def __init__(self, primary: AsyncConnectionPool, replicas: list[Replica], max_lag_ms: int):
        self.primary = primary
        self.replicas = replicas
        self.max_lag_ms = max_lag_ms
        self._turn = itertools.count()
        self.fallbacks = 0  # reads a failing replica handed to the primary

    def fresh(self) -> list[Replica]:
        return [r for r in self.replicas if r.lag_ms is not None and r.lag_ms <= self.max_lag_ms]

    def pool(self) -> AsyncConnectionPool:
        """A fresh replica's pool, in turn, else the primary's."""
        fresh = self.fresh()
        if not fresh:
            return self.primary
        return fresh[next(self._turn) % len(fresh)].pool

    def failed(self, pool: AsyncConnectionPool, err: BaseException) -> None:
        """A read on `pool` failed for a reason of the server: it serves no more reads
        until it is measured again."""
        self.fallbacks += 1
        for replica in self.replicas:
            if replica.pool is pool:
                replica.lag_ms, replica.error = None, str(err).strip()[:300]

    async def open(self) -> None:
        """Opens the replicas' pools without waiting: a standby that is down at start-up
        only means reads go to the primary."""
        for replica in self.replicas:
            await replica.pool.open(wait=False)

    async def close(self) -> None:
        for replica in self.replicas:
            await replica.pool.close()

    async def run(self) -> None:
        if not self.replicas:
            return
        while True:
            await self.measure()
            await asyncio.sleep(SAMPLE_MS / 1000)

    async def measure(self) -> None:
        asked = time.monotonic()
        try:
            row = await fetch_one(
                self.primary, "SELECT (pg_current_wal_lsn() - '0/0')::bigint AS lsn"
            )
        except Exception as err:  # no bound without the primary
            for replica in self.replicas:
                replica.lag_ms, replica.error = None, f"primary not reachable: {err}"[:300]
            return
        for replica in self.replicas:
            replica.samples.append((asked, row["lsn"]))
            await self._measure(replica)

    async def _measure(self, replica: Replica) -> None:
        try:
            row = await fetch_one(
                replica.pool,
                "SELECT pg_is_in_recovery() AS standby,"
                " (pg_last_wal_replay_lsn() - '0/0')::bigint AS replayed",
            )
        except Exception as err:  # any failure: not serving
            replica.lag_ms, replica.error = None, str(err).strip()[:300]
            return
        if not row["standby"]:
            # Promoted, or never a standby: not the primary the writes go to, as far as
            # we can tell, so it serves nothing.
            replica.lag_ms, replica.error = None, "not a standby (pg_is_in_recovery() is false)"
            return
        replica.observe(row["replayed"], time.monotonic())

    def report(self) -> dict:
        return {
            "max_lag_ms": self.max_lag_ms,
            "fallbacks": self.fallbacks,
            "servers": [
                {
                    "server": r.name,
                    "lag_ms": None if r.lag_ms is None else round(r.lag_ms, 1),
                    "serving": r in self.fresh(),
                    "error": r.error,
                }
                for r in self.replicas
            ],
        }

    def advice(self) -> list[str]:
        return [
            f"replica {r.name} is not serving reads ({r.error or f'{r.lag_ms:.0f} ms behind'});"
            " they go to the primary"
            for r in self.replicas
            if r not in self.fresh()
        ]


# What makes a read on a replica go to the primary instead: the server or the network
# (OperationalError, PoolTimeout), or a hot-standby conflict cancelling it (40001).
READ_FAILURES = (psycopg.OperationalError, psycopg.errors.SerializationFailure, PoolTimeout)
