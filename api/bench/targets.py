"""The performance targets of issue 4, read off one run's rows (docs/benchmarks.md).

Each target is a ratio or a rate from rows the run may or may not include; a target whose
rows are missing (a run with `--workloads hot`, `--clients 8`) is left out rather than
reported as failed. On a machine whose speed drifts between rounds, one run's verdict is
one sample: `--repeat` and the rounds' ratios say how far to trust it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from api.bench.report import Row


@dataclass
class Verdict:
    target: str  # what is asked
    measured: str  # what this run measured, and on which row
    met: bool


def _row(rows: list[Row], workload: str, mode: str | None, clients: int) -> Row | None:
    return next(
        (r for r in rows if (r.workload, r.lock_mode, r.clients) == (workload, mode, clients)),
        None,
    )


def _label(r: Row) -> str:
    return f"{r.workload} {r.lock_mode or '-'}, {r.clients} clients"


def _hot(rows: list[Row]) -> Verdict | None:
    r = _row(rows, "hot-slotted", "advisory", 64)
    if r is None or r.vs_baseline is None or r.p99_ms is None:
        return None
    correct = "" if not r.problems else ", audit FAILED"
    return Verdict(
        "hot code, 64 clients: >= 3x naive-hot, p99 <= 50 ms, no oversell",
        f"{_label(r)}: {r.vs_baseline:.2f}x, p99 {r.p99_ms:.1f} ms{correct}",
        r.vs_baseline >= 3 and r.p99_ms <= 50 and not r.problems,
    )


def _spread(rows: list[Row]) -> Verdict | None:
    r = _row(rows, "spread", "advisory", 32)
    if r is None or r.vs_raw is None:
        return None
    return Verdict(
        "spread codes, 32 clients: >= 60 % of raw-update",
        f"{_label(r)}: {r.vs_raw:.0%}",
        r.vs_raw >= 0.6,
    )


def _nowait(rows: list[Row]) -> Verdict | None:
    r = _row(rows, "hot-slotted", "nowait", 64)  # a hot code is slotted (README)
    if r is None:
        return None
    return Verdict(
        "nowait on a hot code, 64 clients: give-ups < 1 %",
        f"{_label(r)}: {r.giveup_rate:.1%}",
        r.giveup_rate < 0.01,
    )


def _http_claim(rows: list[Row]) -> Verdict | None:
    r = _row(rows, "http-claim", "1 worker", 32)
    if r is None or r.vs_baseline is None:
        return None
    return Verdict(
        "HTTP claim, 32 clients: >= 50 % of direct SQL",
        f"{_label(r)}: {r.vs_baseline:.0%} of spread advisory",
        r.vs_baseline >= 0.5,
    )


def _cached_status(rows: list[Row]) -> Verdict | None:
    r = _row(rows, "http-status-cached", "1 worker", 32)
    if r is None or r.p99_ms is None:
        return None
    return Verdict(
        "cached status, 32 clients: >= 5 000 req/s, p99 < 20 ms",
        f"{_label(r)}: {r.ops_per_s:.0f} req/s, p99 {r.p99_ms:.1f} ms",
        r.ops_per_s >= 5000 and r.p99_ms < 20,
    )


TARGETS: list[Callable[[list[Row]], Verdict | None]] = [
    _hot,
    _spread,
    _nowait,
    _http_claim,
    _cached_status,
]


def verdicts(rows: list[Row]) -> list[Verdict]:
    """The targets this run's rows can answer, in the issue's order."""
    return [v for target in TARGETS if (v := target(rows)) is not None]


def summary(found: list[Verdict]) -> str:
    """The verdicts as lines under the table ('' when the run answers none)."""
    if not found:
        return ""
    width = max(len(v.target) for v in found)
    lines = [
        f"  {'met' if v.met else 'NOT MET':<9}{v.target:<{width}}  {v.measured}" for v in found
    ]
    return "\n".join(["Targets of issue 4 in this run (docs/benchmarks.md):", *lines])
