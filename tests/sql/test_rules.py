"""pgcapacity/rules.py states the input rules the SQL enforces; each is probed here against
the SQL itself, so the HTTP layer cannot drift from the database."""

from __future__ import annotations

import json
import re

import psycopg
import pytest

from pgcapacity import rules


def _accepted(conn: psycopg.Connection, sql: str, *params) -> bool:
    try:
        with conn.transaction(force_rollback=True):
            conn.execute(sql, params)
        return True
    except psycopg.Error as err:
        assert err.sqlstate == "CP001", err  # VALIDATION_ERROR, nothing else
        return False


CODES = ["a", "A" * 64, "A" * 65, " ab \t", "a b", "é", "", "  ", "a-b_c", "a.b", "\tX\n"]
HOLDERS = ["", " ", "a", "a" * 256, "a" * 257, "a\x01b", "tab\there", "é ü", "  x  ", "\u0085"]
# The HTTP lease rule is a subset of the SQL one (no fractions, months or ISO 8601 there).
HTTP_LEASES = [
    "15 minutes",
    "1h 30m",
    "90s",
    "1 s",
    "2 weeks",
    " 3 days ",
    "1 m",
    "9999999 w 9999999 d 9999999 h 9999999 m 9999999 s",
    "1 day 12 hours",
    "  8 weeks   5 days ",
]
NOT_HTTP_LEASES = [
    "0 s",
    "1.5 h",
    "-1 h",
    "1 mon",
    "PT15M",
    "1 hour ago",
    "",
    "500 ms",
    " ".join(["1 hour"] * 11),
    "8 h 2 w",
    "1 w 2 w",
    "1h30m",
    "1 d  1 d",
]
POOLS = ["default", "a.b-c_d", "", "a b", "x" * 64, "x" * 65, "É", "Bills"]


@pytest.mark.parametrize("raw", CODES)
def test_code_rule(conn, raw):
    python = bool(re.fullmatch(rules.CODE_PATTERN, raw)) and len(raw) <= rules.CODE_INPUT_MAX_LENGTH
    assert _accepted(conn, "SELECT capacity._require_code(%s)", raw) == python


@pytest.mark.parametrize("raw", HOLDERS)
def test_holder_rule(conn, raw):
    python = bool(re.fullmatch(rules.HOLDER_PATTERN, raw)) and len(raw) <= rules.HOLDER_MAX_LENGTH
    assert _accepted(conn, "SELECT capacity._require_holder(%s)", raw) == python


@pytest.mark.parametrize("raw", POOLS)
def test_pool_rule(conn, raw):
    assert _accepted(conn, "SELECT capacity._require_pool(%s)", raw) == bool(
        re.fullmatch(rules.POOL_PATTERN, raw)
    )


def test_lock_modes(conn):
    for mode in rules.LOCK_MODES:
        assert _accepted(conn, "SELECT capacity._require_lock_mode(%s)", mode)
    for other in ("WAIT", "skip", ""):
        assert not _accepted(conn, "SELECT capacity._require_lock_mode(%s)", other)


def test_numeric_limits(conn):
    def upsert(**spec) -> bool:
        document = json.dumps([{"code": "RULES-1", "max_uses": 10} | spec])
        return _accepted(conn, "SELECT capacity.upsert_codes(%s::jsonb)", document)

    assert upsert(max_uses=rules.MAX_INTEGER) and not upsert(max_uses=rules.MAX_INTEGER + 1)
    assert upsert(slots=rules.MAX_SLOTS) and not upsert(slots=rules.MAX_SLOTS + 1)
    expire = "SELECT capacity.expire_idle_claims(batch_size => %s)"
    assert _accepted(conn, expire, rules.MAX_EXPIRY_BATCH)
    assert not _accepted(conn, expire, rules.MAX_EXPIRY_BATCH + 1)
    tune = "SELECT capacity.tune_slots(slots => %s)"
    assert _accepted(conn, tune, rules.MAX_SLOTS) and not _accepted(conn, tune, rules.MAX_SLOTS + 1)


@pytest.mark.parametrize("raw", HTTP_LEASES)
def test_http_leases_are_sql_leases(conn, raw):
    assert re.fullmatch(rules.LEASE_PATTERN, raw) and len(raw) <= rules.LEASE_MAX_LENGTH
    document = json.dumps([{"code": "RULES-1", "max_uses": 1, "lease": raw}])
    assert _accepted(conn, "SELECT capacity.upsert_codes(%s::jsonb)", document)


@pytest.mark.parametrize("raw", NOT_HTTP_LEASES)
def test_http_lease_rule_refuses(raw):
    assert not (re.fullmatch(rules.LEASE_PATTERN, raw) and len(raw) <= rules.LEASE_MAX_LENGTH)
