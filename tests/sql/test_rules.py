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
