"""The Node.js client (clients/node) tested by Node's own test runner against this run's
database, and its type declarations compiled by tsc against a usage example."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from urllib.parse import quote

from psycopg.conninfo import conninfo_to_dict

NODE_CLIENT = Path(__file__).resolve().parents[2] / "clients" / "node"


def url(conninfo: str) -> str:
    """A postgresql:// URL for node-postgres (which reads no key=value strings)."""
    p = conninfo_to_dict(conninfo)
    auth = quote(p.get("user", "postgres")) + (
        f":{quote(p['password'])}" if p.get("password") else ""
    )
    host = p.get("host", "127.0.0.1")
    if host.startswith("/"):  # a unix socket directory
        return f"postgresql://{auth}@/{p['dbname']}?host={quote(host)}&port={p.get('port', 5432)}"
    return f"postgresql://{auth}@{host}:{p.get('port', 5432)}/{p['dbname']}"


def npm(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    tool = shutil.which("npm")
    assert tool, "npm is missing: install Node.js (18 or newer)"
    assert (NODE_CLIENT / "node_modules" / "pg").is_dir(), "run `make setup` (npm ci)"
    return subprocess.run(
        [tool, *args],
        cwd=NODE_CLIENT,
        env=os.environ | (env or {}),
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_the_node_client_against_the_database(db):
    done = npm("test", env={"DATABASE_URL": url(db)})
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "# pass 9" in done.stdout and "# fail 0" in done.stdout, done.stdout[-2000:]


def test_the_type_declarations_compile():
    done = npm("run", "typecheck")
    assert done.returncode == 0, done.stdout + done.stderr
