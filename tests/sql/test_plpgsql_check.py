"""Every PL/pgSQL function of pgcapacity passes plpgsql_check (Debian's
postgresql-NN-plpgsql-check, installed by `make setup`): no error and no warning, except
the ones listed in ACCEPTED with the reason. `make lint` runs this file too."""

from __future__ import annotations

import os

import psycopg
import pytest

# Trigger functions are checked against their table, with their transition table's name.
TRIGGERS = {
    "capacity._codes_changed()": ("capacity.codes", "changed"),
    "capacity._codes_validate()": ("capacity.codes", None),
    "capacity._code_row_changed()": ("capacity.codes", None),
}
# (function, message start) -> why it is not a defect.
ACCEPTED: dict[tuple[str, str], str] = {
    (
        "capacity._take_slot(capacity.codes,text,integer)",
        "control reached end of function without RETURN",
    ): ("its last statement is a LOOP that only ends by RETURN or RAISE"),
}

CHECK = """
    SELECT %(fn)s::text, r.level, r.message, r.lineno, r.statement, r.hint
      FROM plpgsql_check_function_tb(%(fn)s::regprocedure, %(rel)s::regclass,
                                     newtable => %(new)s, fatal_errors => false,
                                     other_warnings => true, extra_warnings => true,
                                     performance_warnings => false,
                                     security_warnings => true) AS r
"""


def plpgsql_functions(conn: psycopg.Connection) -> list[str]:
    return [
        r[0]
        for r in conn.execute("""
            SELECT p.oid::regprocedure::text FROM pg_proc p
              JOIN pg_language l ON l.oid = p.prolang
             WHERE p.pronamespace = 'capacity'::regnamespace AND l.lanname = 'plpgsql'
             ORDER BY 1""")
    ]


@pytest.fixture
def checked(db):
    with psycopg.connect(db, autocommit=True) as conn:
        try:
            conn.execute("CREATE EXTENSION IF NOT EXISTS plpgsql_check")
        except (psycopg.errors.FeatureNotSupported, psycopg.errors.UndefinedFile) as err:
            if os.environ.get("PGCAPACITY_SERVER") == "embedded":
                pytest.skip("plpgsql_check is a C extension for the system's PostgreSQL only")
            raise RuntimeError("plpgsql_check is not installed: run `make setup`") from err
        yield conn


def test_every_plpgsql_function_passes_plpgsql_check(checked):
    functions = plpgsql_functions(checked)
    assert len(functions) > 30, functions  # the catalog query finds them
    findings = []
    for fn in functions:
        rel, new = TRIGGERS.get(fn, (0, None))
        for row in checked.execute(CHECK, {"fn": fn, "rel": rel, "new": new}):
            if (fn, row[2].split(":")[0]) not in ACCEPTED:
                findings.append(row)
    lines = [
        f"{fn}:{line} {level}: {msg} [{stmt}] {hint or ''}"
        for fn, level, msg, line, stmt, hint in findings
    ]
    assert not findings, "plpgsql_check:\n" + "\n".join(lines)


def test_the_check_finds_a_broken_function(checked):
    """The lint can fail: a function reading a column that does not exist is reported."""
    with checked.transaction(force_rollback=True):
        checked.execute("""
            CREATE FUNCTION capacity._lint_probe() RETURNS integer LANGUAGE plpgsql AS $$
            BEGIN RETURN (SELECT no_such_column FROM capacity.codes LIMIT 1); END $$""")
        rows = checked.execute(CHECK, {"fn": "capacity._lint_probe()", "rel": 0, "new": None})
        assert [r[1] for r in rows] == ["error"]
