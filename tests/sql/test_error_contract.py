"""Every RAISE in the SQL names its SQLSTATE, and every CP code is in error_codes()."""

from __future__ import annotations

import re

from pgcapacity import installer


def sql_sources() -> dict[str, str]:
    return {p.name: p.read_text() for p in installer.sql_dir().glob("functions/*.sql")}


def test_every_raise_has_an_explicit_errcode():
    seen = 0
    for name, text in sql_sources().items():
        for stmt in re.findall(r"RAISE\s+EXCEPTION\s+'(?:[^']|'')*'[^;]*;", text):
            seen += 1
            assert "ERRCODE" in stmt, f"{name}: RAISE without ERRCODE: {stmt[:80]}"
    assert seen > 20, "the pattern must find the RAISE statements"


def test_every_raised_cp_code_is_listed_with_a_matching_name(conn):
    listed = dict(conn.execute("SELECT sqlstate, name FROM capacity.error_codes()").fetchall())
    raised = 0
    for name, text in sql_sources().items():
        for message, code in re.findall(
            r"RAISE EXCEPTION '([A-Z_]+):.*?ERRCODE = '(CP\d{3})'", text, flags=re.S
        ):
            raised += 1
            assert code in listed, f"{name}: {code} is not in error_codes()"
            assert listed[code] == message, (
                f"{name}: message says {message} but {code} is {listed[code]}"
            )
    assert raised > 20


def test_error_names_and_codes_are_unique(conn):
    rows = conn.execute("SELECT name, sqlstate, http_status FROM capacity.error_codes()").fetchall()
    assert len({r[0] for r in rows}) == len({r[1] for r in rows}) == len(rows) == 18
    assert all(400 <= r[2] < 600 for r in rows)


def test_cp_codes_outside_the_catalog_never_escape(conn):
    """The only unlisted CP code is CP099, which rolls back a subtransaction in the same
    function and is caught there (sql/functions/claim.sql)."""
    listed = {r[0] for r in conn.execute("SELECT sqlstate FROM capacity.error_codes()")}
    for name, text in sql_sources().items():
        for code in set(re.findall(r"ERRCODE = '(CP\d{3})'", text)) - listed:
            assert code == "CP099", f"{name}: {code} is neither listed nor internal"
            raised = len(re.findall(r"ERRCODE = 'CP099'", text))
            caught = len(re.findall(r"WHEN SQLSTATE 'CP099'", text))
            assert raised == caught > 0, f"{name}: every CP099 must be caught where raised"
