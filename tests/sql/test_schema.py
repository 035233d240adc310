"""sql/schema.sql, the generated picture of the current schema, matches what the installer
builds (as procrastinate checks its schema.sql against its migrations)."""

from __future__ import annotations

import psycopg

from pgcapacity import installer
from tests.support import snapshot


def test_schema_sql_is_what_an_install_builds(new_database):
    installed, pictured = new_database(empty=True), new_database(empty=True)
    installer.migrate(installed)
    text = (installer.sql_dir() / "schema.sql").read_text()
    with psycopg.connect(pictured, autocommit=True) as conn:
        conn.execute(text.encode())
    expected, found = snapshot(installed), snapshot(pictured)
    del expected["migrations"], found["migrations"]  # the install's records: data, not schema
    for part in expected:
        assert found[part] == expected[part], (
            f"sql/schema.sql is stale ({part} differ): run `make schema` and commit it"
        )
