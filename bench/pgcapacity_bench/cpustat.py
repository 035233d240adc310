"""This machine's CPU time by state (/proc/stat, Linux): the share a hypervisor took from
it while a row ran ("steal"). On a shared virtual machine that is what most often makes one
round of a row slower than the next, so the bench prints it beside the rates: a round that
lost a sixth of the machine measured the neighbours, not pgcapacity."""

from __future__ import annotations

from pathlib import Path

# The aggregate "cpu" line: user nice system idle iowait irq softirq steal [guest ...];
# guest time is counted in user already.
_STEAL = 7


def parse(stat: str) -> tuple[int, ...]:
    """The aggregate CPU times of a /proc/stat text, in clock ticks."""
    first = stat.split("\n", 1)[0].split()
    if not first or first[0] != "cpu" or len(first) <= _STEAL + 1:
        raise ValueError(f"not a /proc/stat cpu line: {first[:1]}")
    return tuple(int(v) for v in first[1 : _STEAL + 2])


def sample() -> tuple[int, ...] | None:
    """The machine's CPU times now; None where /proc/stat cannot tell (not Linux)."""
    try:
        return parse(Path("/proc/stat").read_text())
    except (OSError, ValueError):
        return None


def steal_share(before: tuple[int, ...] | None, after: tuple[int, ...] | None) -> float | None:
    """The share of the machine's CPU time between two samples that the hypervisor took."""
    if before is None or after is None:
        return None
    spent = [b - a for a, b in zip(before, after, strict=True)]
    total = sum(spent)
    return round(spent[_STEAL] / total, 3) if total > 0 else None
