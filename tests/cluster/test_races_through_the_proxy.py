"""The concurrency races of a single server, unchanged, through the proxy: the hot code,
one holder from many connections, holder limits, double release and the mixed workload.
Here `db` is the proxy; reset() and audit() reach the shards behind it."""

from __future__ import annotations

import pytest

from tests.sql.test_concurrency import (
    test_32_connections_claim_for_the_same_holder,
    test_64_connections_race_for_400_units,
    test_concurrent_double_release_returns_one_unit,
    test_holder_limit_3_with_20_codes_claimed_at_once,
    test_one_holder_claims_and_releases_one_code_from_16_connections,
)
from tests.sql.test_mixed_workload import test_mixed_random_workload

__all__ = [
    "test_32_connections_claim_for_the_same_holder",
    "test_64_connections_race_for_400_units",
    "test_concurrent_double_release_returns_one_unit",
    "test_holder_limit_3_with_20_codes_claimed_at_once",
    "test_mixed_random_workload",
    "test_one_holder_claims_and_releases_one_code_from_16_connections",
]


@pytest.fixture(scope="module")
def db(sharded) -> str:
    return sharded.proxy
