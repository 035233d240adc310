"""The benchmark's output: one table (or JSON) with ratios to the baselines of the same run."""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass, field


@dataclass
class Row:
    workload: str
    lock_mode: str | None
    clients: int
    seconds: float
    ops: int
    ops_per_s: float
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    contention: int  # contended attempts (LOCK_CONTENDED, lock timeouts)
    retries: int  # client-side retries after contention
    giveups: int  # ops abandoned because of contention
    full: int  # claims refused with CODE_FULL
    refused: int  # claims refused by the holder limit
    errors: int  # anything else (should be 0)
    problems: list[str] = field(default_factory=list)  # the correctness line; [] = correct
    audited: bool = True
    vs_baseline: float | None = None
    vs_raw: float | None = None
    # With --repeat: the same ratios in each round, over the baselines of that round.
    vs_baseline_rounds: list[float | None] = field(default_factory=list)
    vs_raw_rounds: list[float | None] = field(default_factory=list)
    # The share of this machine's CPU time a hypervisor took while the row ran (cpustat),
    # and with --repeat the same for the row's run in each round.
    steal: float | None = None
    steal_rounds: list[float | None] = field(default_factory=list)
    # Scale rows on a server on this machine: CPU ms per op its backends spent, by role
    # ("proxy", "shards"), in the same run.
    server_cpu_ms: dict[str, float] | None = None

    @property
    def attempts(self) -> int:
        return self.ops + self.giveups + self.full + self.refused + self.errors

    @property
    def giveup_rate(self) -> float:
        return self.giveups / self.attempts if self.attempts else 0.0


def row_key(r: Row) -> tuple:
    """What identifies a row of the table (a run of it in every --repeat round)."""
    return (r.workload, r.lock_mode, r.clients)


def ratios_of(rows: list[Row], baseline_of: dict[str, str | None]) -> dict[tuple, tuple]:
    """Each row's (ops/s over its baseline at the same client count, over raw-update)."""
    # A baseline with the row's own mode first (sql-claim beside the http-claim row of the
    # same API); else baselines have no lock mode, and a pgcapacity workload as a baseline
    # counts in its default mode.
    exact = {row_key(r): r.ops_per_s for r in rows}
    best = {(r.workload, r.clients): r.ops_per_s for r in rows if r.lock_mode in (None, "advisory")}
    ratios = {}
    for r in rows:
        base = exact.get((baseline_of.get(r.workload), r.lock_mode, r.clients)) or best.get(
            (baseline_of.get(r.workload), r.clients)
        )
        raw = best.get(("raw-update", r.clients))
        ratios[row_key(r)] = (
            round(r.ops_per_s / base, 2) if base else None,
            round(r.ops_per_s / raw, 2) if raw and r.workload != "select1" else None,
        )
    return ratios


def add_ratios(
    rows: list[Row], baseline_of: dict[str, str | None], per_round: list[dict] = ()
) -> None:
    """vs_baseline: ops/s over the workload's baseline at the same client count; vs_raw:
    over the raw random-row UPDATE pair. `per_round`: ratios_of() each --repeat round's
    runs, kept with the row (the machine's speed drifts between rounds, so they say how far
    one run's ratio can be trusted). With rounds, a row's ratio is the median of its
    rounds' ratios, each over the baseline run in the same round, shortly before or after
    it: a ratio of the median runs would divide runs of different rounds, and the drift
    between rounds would enter the ratio that pairing within a round keeps out."""
    ratios = ratios_of(rows, baseline_of)
    for r in rows:
        seen = [each[row_key(r)] for each in per_round if row_key(r) in each]
        r.vs_baseline_rounds = [base for base, _ in seen]
        r.vs_raw_rounds = [raw for _, raw in seen]
        if len(seen) > 1:
            r.vs_baseline = _median_ratio(r.vs_baseline_rounds)
            r.vs_raw = _median_ratio(r.vs_raw_rounds)
        else:
            r.vs_baseline, r.vs_raw = ratios[row_key(r)]


def _median_ratio(values: list[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return round(statistics.median(known), 2) if known else None


def by_round(rows: list[Row]) -> str:
    """The per-round ratios of the rows that have them, and the CPU steal of each round's
    run, a line each ('' without rounds)."""
    lines = []
    for r in rows:
        series = [
            ("x base", r.vs_baseline_rounds, ratio_text),
            ("x raw", r.vs_raw_rounds, ratio_text),
        ]
        if r.workload == "raw-update":  # 1.00x over itself says nothing
            series = []
        if len(r.steal_rounds) > 1:
            series.append(("steal", r.steal_rounds, share_text))
        parts = [
            f"{name} " + " ".join(show(v) for v in values)
            for name, values, show in series
            if any(v is not None for v in values)
        ]
        if parts:
            lines.append(
                f"{r.workload:<19}{r.lock_mode or '-':<9}{r.clients:>7}  " + "   ".join(parts)
            )
    if not lines:
        return ""
    return "\n".join(
        [
            "Ratios round by round (each over the baselines of its own round), and the share of "
            "the machine's CPU a hypervisor took during each round's run (steal):",
            *lines,
        ]
    )


def _ms(v: float | None) -> str:
    return "-" if v is None else f"{v:.1f}"


def ratio_text(v: float | None) -> str:
    """A ratio as the table prints it ("-" when unknown)."""
    return "-" if v is None else f"{v:.2f}x"


def share_text(v: float | None) -> str:
    """A share as the table prints it ("-" when unknown)."""
    return "-" if v is None else f"{v:.0%}"


HEADER = (
    f"{'workload':<19}{'mode':<9}{'clients':>7}{'ops/s':>9}{'p50':>8}{'p95':>8}{'p99':>8}"
    f"{'content.':>9}{'retries':>8}{'give-up':>9}{'full/ref':>9}{'err':>5}"
    f"{'x base':>8}{'x raw':>7}{'steal':>7}  correct"
)


def table(rows: list[Row]) -> str:
    lines = [HEADER, "-" * len(HEADER)]
    previous = None
    for r in rows:
        if previous and previous != r.workload:
            lines.append("")
        previous = r.workload
        correct = (
            ("ok" if not r.problems else "FAIL: " + "; ".join(r.problems)) if r.audited else ""
        )
        lines.append(
            f"{r.workload:<19}{r.lock_mode or '-':<9}{r.clients:>7}{r.ops_per_s:>9.0f}"
            f"{_ms(r.p50_ms):>8}{_ms(r.p95_ms):>8}{_ms(r.p99_ms):>8}"
            f"{r.contention:>9}{r.retries:>8}{r.giveup_rate:>8.1%} {r.full + r.refused:>8}"
            f"{r.errors:>5}{ratio_text(r.vs_baseline):>8}{ratio_text(r.vs_raw):>7}{share_text(r.steal):>7}"
            f"  {correct}"
        )
    return "\n".join(lines)


def as_json(meta: dict, rows: list[Row]) -> dict:
    return {"meta": meta, "rows": [asdict(r) | {"giveup_rate": r.giveup_rate} for r in rows]}
