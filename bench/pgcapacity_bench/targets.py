"""The performance targets, read off one run's rows (docs/benchmarks.md).

Each target is a ratio or a rate from rows the run may or may not include; a target whose
rows are missing (a run with `--workloads hot`, `--clients 8`) is left out rather than
reported as failed. On a machine whose speed drifts between rounds, one run's verdict is
one sample: `--repeat` and the rounds' ratios say how far to trust it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from pgcapacity_bench.report import Row, ratio_text, row_key, share_text


@dataclass
class Verdict:
    target: str  # what is asked
    measured: str  # what this run measured, and on which row
    met: bool


@dataclass(frozen=True)
class Target:
    text: str
    row: tuple[str, str | None, int]  # the row it is read from: workload, mode, clients
    figure: Callable[[Row], str | None]  # what the row measured (None: it lacks the figure)
    met: Callable[[Row], bool]


# The ratio bars of the targets, read by each verdict and by its rounds' count.
HOT_BAR = 3.0  # x naive-hot
SPREAD_BAR = 0.6  # x raw-update
HTTP_CLAIM_BAR = 0.5  # x sql-claim


def _across_rounds(values: list[float | None], bar: float, show: Callable[[float], str]) -> str:
    """How a ratio judged on its median fared round by round (with --repeat): its range and
    how many rounds reached the bar. One run's verdict on a noisy machine is one sample;
    this says whether it sits on the bar or clear of it. '' with a single round."""
    known = [v for v in values if v is not None]
    if len(known) < 2:
        return ""
    reached = sum(v >= bar for v in known)
    return (
        f" (rounds {show(min(known))}-{show(max(known))}, {reached} of {len(known)}"
        f" at or above {show(bar)})"
    )


def _hot_figure(r: Row) -> str | None:
    if r.vs_baseline is None or r.p99_ms is None:
        return None
    rounds = _across_rounds(r.vs_baseline_rounds, HOT_BAR, ratio_text)
    audit = ", audit FAILED" if r.problems else ""
    return f"{ratio_text(r.vs_baseline)}{rounds}, p99 {r.p99_ms:.1f} ms{audit}"


def _spread_figure(r: Row) -> str | None:
    if r.vs_raw is None:
        return None
    return share_text(r.vs_raw) + _across_rounds(r.vs_raw_rounds, SPREAD_BAR, share_text)


def _http_claim_figure(r: Row) -> str | None:
    if r.vs_baseline is None:
        return None
    rounds = _across_rounds(r.vs_baseline_rounds, HTTP_CLAIM_BAR, share_text)
    return f"{share_text(r.vs_baseline)} of sql-claim beside it{rounds}"


TARGETS = [
    Target(
        "hot code, 64 clients: >= 3x naive-hot, p99 <= 50 ms, no oversell",
        ("hot-slotted", "advisory", 64),
        _hot_figure,
        lambda r: r.vs_baseline >= HOT_BAR and r.p99_ms <= 50 and not r.problems,
    ),
    Target(
        "spread codes, 32 clients: >= 60 % of raw-update",
        ("spread", "advisory", 32),
        _spread_figure,
        lambda r: r.vs_raw >= SPREAD_BAR,
    ),
    Target(  # a hot code is slotted (README)
        "nowait on a hot code, 64 clients: give-ups < 1 %",
        ("hot-slotted", "nowait", 64),
        lambda r: f"{r.giveup_rate:.1%}",
        lambda r: r.giveup_rate < 0.01,
    ),
    Target(
        "HTTP claim, 32 clients: >= 50 % of direct SQL",
        ("http-claim", "1 worker", 32),
        _http_claim_figure,
        lambda r: r.vs_baseline >= HTTP_CLAIM_BAR,
    ),
    Target(
        "cached status, 32 clients: >= 5 000 req/s, p99 < 20 ms",
        ("http-status-cached", "1 worker", 32),
        lambda r: None if r.p99_ms is None else f"{r.ops_per_s:.0f} req/s, p99 {r.p99_ms:.1f} ms",
        lambda r: r.ops_per_s >= 5000 and r.p99_ms < 20,
    ),
]


def verdicts(rows: list[Row]) -> list[Verdict]:
    """The targets this run's rows can answer, in the order of TARGETS."""
    by_key = {row_key(r): r for r in rows}
    found = []
    for target in TARGETS:
        r = by_key.get(target.row)
        if r is not None and (figure := target.figure(r)) is not None:
            label = f"{r.workload} {r.lock_mode or '-'}, {r.clients} clients"
            found.append(Verdict(target.text, f"{label}: {figure}", target.met(r)))
    return found


def summary(found: list[Verdict]) -> str:
    """The verdicts as lines under the table ('' when the run answers none)."""
    if not found:
        return ""
    width = max(len(v.target) for v in found)
    lines = [
        f"  {'met' if v.met else 'NOT MET':<9}{v.target:<{width}}  {v.measured}" for v in found
    ]
    return "\n".join(["Performance targets in this run (docs/benchmarks.md):", *lines])
