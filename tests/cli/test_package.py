"""What `pip install pgcapacity` installs: the package `pgcapacity` with its SQL, nothing
named `api`, no benchmark and no tests."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_the_wheel_holds_the_product_and_its_sql_only(tmp_path):
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(REPO)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert built.returncode == 0, built.stderr
    (wheel,) = tmp_path.glob("pgcapacity-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/", 1)[0] for n in names}
    assert tops == {"pgcapacity", wheel.name.split("-py3")[0] + ".dist-info"}, tops
    assert "pgcapacity/sql/migrations/0001_schema.sql" in names
    assert "pgcapacity/sql/functions/claim.sql" in names
    assert "pgcapacity/sql/views/dashboard.sql" in names
    assert not [n for n in names if "bench" in n or "/tests/" in n], names
    for source in (REPO / "sql").glob("*/*.sql"):
        if source.parent.name != "tests":
            assert f"pgcapacity/sql/{source.parent.name}/{source.name}" in names


def test_the_sources_refuse_to_be_imported_as_api():
    done = subprocess.run(
        [sys.executable, "-c", "import api"], cwd=REPO, capture_output=True, text=True
    )
    assert done.returncode == 1
    assert "the pgcapacity sources are imported as 'api'" in done.stderr
    elsewhere = subprocess.run([sys.executable, "-c", "import api"], cwd="/", capture_output=True)
    assert elsewhere.returncode == 1  # nothing named api is installed
