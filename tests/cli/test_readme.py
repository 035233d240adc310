"""The README's walk-throughs do what they say: the curl walk-through against a running
API, then the SQL tour pasted into psql on the same database, every result it shows in a
comment printed by psql (twice: a second paste gives the same results but the upsert's)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from tests.support import live_server, psql, settings_for

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def block(heading: str, language: str) -> str:
    """The first ```language block after the heading."""
    section = README[README.index(heading) :]
    return re.search(rf"```{language}\n(.*?)```", section, re.S).group(1)


def results(sql: str) -> list[list[str]]:
    """The result tables the tour's comments show: runs of `--  ` lines after a statement,
    each line with its whitespace collapsed."""
    shown, current = [], []
    for line in sql.splitlines():
        if line.startswith("--  "):
            current.append(" ".join(line[3:].split()))
        elif current:
            shown.append(current)
            current = []
    return shown + ([current] if current else [])


def printed_in_order(output: str, tables: list[list[str]]) -> list[list[str]]:
    """The tables not found, in order, among psql's output lines."""
    lines = [" ".join(line.split()) for line in output.splitlines()]
    missing, at = [], 0
    for table in tables:
        for i in range(at, len(lines)):
            if lines[i : i + len(table)] == table or _table_at(lines, i, table):
                at = i + len(table)
                break
        else:
            missing.append(table)
    return missing


def _table_at(lines: list[str], i: int, table: list[str]) -> bool:
    """psql prints a separator line (---+---) under the header, which the comments omit."""
    rows = lines[i : i + len(table) + 1]
    return (
        len(rows) == len(table) + 1 and [rows[0], *rows[2:]] == table and set(rows[1]) <= set("-+ ")
    )


def test_the_curl_walk_through_then_the_sql_tour(db, tmp_path):
    curl = block("### A walk-through with curl", "sh")
    sql = block("## The SQL API", "sql")
    settings = settings_for(db)
    (tmp_path / ".pgdata").mkdir()
    (tmp_path / ".pgdata" / "admin-token").write_text(settings.admin_token + "\n")
    with live_server(settings) as base:
        script = curl.replace("http://127.0.0.1:8000", base)
        walked = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", script],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert walked.returncode == 0, walked.stderr
    assert '"claim_id"' in walked.stdout and "CODE_FULL" in walked.stdout
    tables = results(sql)
    assert len(tables) > 12, "the tour's results must be found in its comments"
    first = psql(db, "-P", "null=", input=sql)
    assert first.returncode == 0, first.stderr
    assert printed_in_order(first.stdout, tables) == [], first.stdout
    again = psql(db, "-P", "null=", input=sql)
    assert again.returncode == 0, again.stderr
    assert printed_in_order(again.stdout, tables) == [tables[0]], again.stdout
    assert "0 | 3" in " ".join(again.stdout.split())
