"""Fixtures for the HTTP tests (the database fixtures live in the root conftest.py)."""

import pytest


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
