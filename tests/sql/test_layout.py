"""Every public function's body is in the file named after it."""

from __future__ import annotations

from pgcapacity import installer


def test_every_public_function_has_its_own_file(conn):
    names = [
        r[0]
        for r in conn.execute("""
            SELECT DISTINCT p.proname FROM pg_proc p
             WHERE p.pronamespace = 'capacity'::regnamespace AND p.proname !~ '^_'""")
    ]
    assert len(names) >= 16, names
    functions = installer.sql_dir() / "functions"
    for name in names:
        source = functions / f"{name}.sql"
        assert source.exists(), f"capacity.{name} has no sql/functions/{name}.sql"
        assert f"CREATE OR REPLACE FUNCTION capacity.{name}(" in source.read_text(), name
