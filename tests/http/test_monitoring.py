"""deploy/: the Prometheus alert rules pass promtool's checks and unit tests, the Grafana
dashboard's queries are valid PromQL, and every metric either names is one the running API
exports."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support import ADMIN_AUTH, CLIENT_AUTH, api_client, reset, settings_for

pytestmark = pytest.mark.anyio
DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
METRIC = re.compile(r"\b(pgcapacity_[a-z_]+)\b")


def promtool(*args: str, cwd: Path = DEPLOY / "prometheus") -> subprocess.CompletedProcess:
    tool = shutil.which("promtool")
    assert tool, "promtool is missing: run `make setup` (Debian package prometheus)"
    return subprocess.run([tool, *args], cwd=cwd, capture_output=True, text=True, timeout=60)


def dashboard_queries() -> list[str]:
    board = json.loads((DEPLOY / "grafana" / "pgcapacity.json").read_text())
    queries = [t["expr"] for panel in board["panels"] for t in panel["targets"]]
    assert len(queries) >= 10 and all(panel["targets"] for panel in board["panels"])
    return queries


def rule_queries() -> list[str]:
    text = (DEPLOY / "prometheus" / "alerts.yml").read_text()
    return re.findall(r"expr: \|?\s*((?:.|\n)*?)\n\s+for:", text)


def test_the_alert_rules_and_the_scrape_config_pass_promtool():
    for args in (("check", "config", "prometheus.yml"), ("test", "rules", "alerts.test.yml")):
        done = promtool(*args)
        assert done.returncode == 0, done.stdout + done.stderr


def test_the_dashboards_queries_are_valid_promql(tmp_path):
    """promtool parses every query as a recording rule's expression."""
    rules = {
        "groups": [
            {
                "name": "dashboard",
                "rules": [
                    {"record": f"pgcapacity:panel_{i}", "expr": q}
                    for i, q in enumerate(dashboard_queries())
                ],
            }
        ]
    }
    (tmp_path / "dashboard.rules.json").write_text(json.dumps(rules))  # JSON is YAML
    done = promtool("check", "rules", "dashboard.rules.json", cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr


async def test_every_metric_they_name_is_exported(db):
    named = {m for q in dashboard_queries() + rule_queries() for m in METRIC.findall(q)}
    assert len(named) >= 10, named
    reset(db, [{"code": "MON", "max_uses": 1, "pool": "monitored"}])
    settings = settings_for(db, expire_idle=True, expire_every_ms=50)
    async with api_client(settings) as c:
        await c.post("/v1/codes/MON/claims", json={"holder": "a"}, headers=CLIENT_AUTH)
        await c.post("/v1/codes/MON/claims", json={"holder": "b"}, headers=CLIENT_AUTH)  # full
        await c.post("/v1/admin/dashboard/refresh", headers=ADMIN_AUTH)
        await c.get("/v1/codes/MON")
        text = (await c.get("/metrics")).text
    exported = {line.split("{")[0].split(" ")[0] for line in text.splitlines() if line[:1] != "#"}
    assert named - exported == set(), f"named but not exported: {named - exported}"
    assert 'pgcapacity_pool_codes{pool="monitored",state="full"} 1.0' in text
    assert 'pgcapacity_pool_units{kind="used",pool="monitored"} 1.0' in text
