"""The web dashboard in a real headless Chromium: ui/test/dashboard.test.mjs (Node's test
runner, playwright-core driving the system's Chromium) against the real app serving this
module's database. Saves a screenshot in build/artifacts/dashboard.png."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import httpx

from pgcapacity.routes.ui import chart_js_dir
from tests.support import ADMIN, ADMIN_AUTH, CLIENT, live_server, settings_for

ROOT = Path(__file__).resolve().parents[2]
UI = ROOT / "ui"
SCREENSHOT = ROOT / "build" / "artifacts" / "dashboard.png"
CHROMIUM = ("/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome")


def chromium() -> str:
    found = os.environ.get("CHROMIUM") or next((p for p in CHROMIUM if Path(p).exists()), None)
    assert found, "Chromium is missing: `make setup` installs Debian's chromium"
    return found


def test_the_dashboard_in_a_real_browser(db):
    node = shutil.which("node")
    assert node, "Node.js is missing (the browser test runs on it)"
    assert (UI / "node_modules" / "playwright-core").is_dir(), "run `make setup` (npm ci in ui/)"
    assert (chart_js_dir() / "chart.umd.min.js").is_file(), "Chart.js is missing: `make setup`"
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    SCREENSHOT.unlink(missing_ok=True)
    with live_server(settings_for(db)) as base:
        created = httpx.post(
            f"{base}/v1/admin/codes",
            headers=ADMIN_AUTH,
            json={"codes": [{"code": "UI-DEMO-1", "max_uses": 5, "pool": "ui-test"}]},
        )
        assert created.status_code == 200, created.text
        done = subprocess.run(
            [node, "--test", "test/"],
            cwd=UI,
            env=os.environ
            | {
                "PGCAPACITY_URL": base,
                "ADMIN_TOKEN": ADMIN,
                "CLIENT_TOKEN": CLIENT,
                "CODE": "UI-DEMO-1",
                "CHROMIUM": chromium(),
                "SCREENSHOT": str(SCREENSHOT),
            },
            capture_output=True,
            text=True,
            timeout=170,
        )
    print(done.stdout[-3000:])
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-3000:]
    assert "# pass 2" in done.stdout and "# fail 0" in done.stdout, done.stdout[-2000:]
    assert SCREENSHOT.stat().st_size > 10_000, "the screenshot was saved"
