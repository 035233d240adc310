"""The bench's throw-away databases: created on a server for one run, dropped after it."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg

from pgcapacity import pgserver


@contextmanager
def database(server_url: str) -> Iterator[str]:
    """A new empty database on the server (its conninfo), dropped at the end even while
    sessions are still connected to it."""
    name = f"pgcapacity_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield pgserver.with_database(server_url, name)
    finally:
        with psycopg.connect(server_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
