"""CPU time of a local process from /proc, for the bench scripts (Linux only)."""

from __future__ import annotations

import os
from pathlib import Path


def cpu_seconds(pid: int) -> float:
    """User plus system CPU seconds of process `pid` so far (FileNotFoundError once it
    exited). utime and stime are fields 14 and 15, after the parenthesised name."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
