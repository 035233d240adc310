"""A sharded install: two shard databases (clones of the template) and a proxy database
on the test server, joined by `pgcapacity cluster install`."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from pgcapacity import cluster


@dataclass(frozen=True)
class Cluster:
    proxy: str
    shards: list[str]


@pytest.fixture(scope="module")
def sharded(new_database) -> Cluster:
    shards = [new_database(), new_database()]
    proxy = new_database(empty=True)
    cluster.install(proxy, shards)
    return Cluster(proxy, shards)
