"""Runs one benchmark row: N client threads, each on its own connection, for a fixed time.

Clients are threads with blocking psycopg connections: the GIL is released while a client
waits on the server, and the SELECT 1 baseline measured by the same runner shows the
ceiling this client machinery puts on any row.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import psycopg

from pgcapacity_bench import cpustat


@dataclass
class Client:
    """What one client thread owns: its connection, its random stream, its tallies."""

    conn: psycopg.Connection
    index: int
    rng: random.Random
    tally: Counter = field(default_factory=Counter)  # outcomes inside the measured window
    effects: Counter = field(default_factory=Counter)  # every claim/release made, for audits
    latencies_us: list[int] = field(default_factory=list)
    sequence: int = 0

    def next_id(self) -> str:
        """A value unique across clients and rows (holders that never collide)."""
        self.sequence += 1
        return f"c{self.index}-{self.sequence}"


Op = Callable[[Client], None]


@dataclass
class Measurement:
    seconds: float
    tally: Counter
    latencies_us: list[int]
    effects: Counter
    steal: float | None = None  # the machine's CPU time the hypervisor took meanwhile
    probed: tuple[object, object] | None = None  # probe() at the window's start and end

    @property
    def ops(self) -> int:
        return self.tally["ok"]

    @property
    def throughput(self) -> float:
        return self.ops / self.seconds if self.seconds else 0.0

    def percentile_ms(self, q: float) -> float | None:
        if not self.latencies_us:
            return None
        ordered = sorted(self.latencies_us)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] / 1000


def measure(
    conns: list[psycopg.Connection],
    op: Op,
    *,
    seconds: float,
    warmup: float,
    seed: int,
    tick: Callable[[int], None] | None = None,
    probe: Callable[[], object] | None = None,
) -> Measurement:
    """Every connection runs `op` in a loop; only ops that start after the warm-up and
    finish before the deadline count. `tick(ops so far)` is called about twice a second.
    The measurement also says how much of the machine's CPU time a hypervisor took during
    the measured window (cpustat), and what `probe()` returned at its start and end."""
    clients = [Client(c, i, random.Random(seed * 1000 + i)) for i, c in enumerate(conns)]
    start_line = threading.Barrier(len(clients) + 1)
    stop = threading.Event()
    window: dict[str, float] = {}
    failures: list[BaseException] = []

    def loop(client: Client) -> None:
        try:
            start_line.wait()
            while not stop.is_set():
                began = time.perf_counter()
                before = client.tally.copy() if began >= window["from"] else None
                op(client)
                ended = time.perf_counter()
                if before is None:  # warm-up: forget what it counted
                    client.tally.clear()
                    continue
                if ended <= window["until"]:
                    client.latencies_us.append(int((ended - began) * 1e6))
                else:  # finished after the deadline: not part of the measurement
                    client.tally.subtract(client.tally - before)
        except BaseException as err:  # surfaced to the caller below
            failures.append(err)
            stop.set()

    threads = [threading.Thread(target=loop, args=(c,), daemon=True) for c in clients]
    for t in threads:
        t.start()
    now = time.perf_counter()
    window["from"], window["until"] = now + warmup, now + warmup + seconds
    start_line.wait()

    def wait_until(moment: float) -> None:
        while (remaining := moment - time.perf_counter()) > 0 and not stop.is_set():
            time.sleep(min(0.5, remaining))
            if tick:
                tick(sum(c.tally["ok"] for c in clients))

    wait_until(window["from"])
    cpu_before = cpustat.sample()
    probed_before = probe() if probe else None
    wait_until(window["until"])
    steal = cpustat.steal_share(cpu_before, cpustat.sample())
    probed = (probed_before, probe()) if probe else None
    stop.set()
    for t in threads:
        t.join()
    if failures:
        raise failures[0]
    tally: Counter = Counter()
    effects: Counter = Counter()
    latencies: list[int] = []
    for c in clients:
        tally.update({k: v for k, v in c.tally.items() if v})
        effects.update(c.effects)
        latencies.extend(c.latencies_us)
    return Measurement(seconds, tally, latencies, effects, steal, probed)


def publisher(db: str, interval_ms: int):
    """What a running API adds to the database: publishing the change feed. Returns the
    function that stops it."""
    stop = threading.Event()

    def loop() -> None:
        with psycopg.connect(db, autocommit=True) as conn:
            while not stop.wait(interval_ms / 1000):
                conn.execute("SELECT capacity.publish_changes()")

    thread = threading.Thread(target=loop, daemon=True, name="publisher")
    if interval_ms > 0:
        thread.start()

    def halt() -> None:
        stop.set()
        if thread.is_alive():
            thread.join()

    return halt
