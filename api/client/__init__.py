"""A Python client for applications that call pgcapacity's SQL directly with psycopg 3.

    from pgcapacity.client import Capacity, CodeFull

    cap = Capacity(pool)                      # a psycopg_pool.ConnectionPool
    try:
        with cap.claim("CLASS-7A", "student-42") as claim:
            ...                               # heartbeats in the background; released after
    except CodeFull as full:
        print(full.detail["max_uses"], full.hint)

AsyncCapacity is the same over an AsyncConnectionPool. Typed results (Claim, Release,
CodeStatus), one exception class per error name carrying SQLSTATE, DETAIL and HINT,
LOCK_CONTENDED retried with backoff and jitter (Retry).
"""

from pgcapacity.client._calls import Claim, CodeStatus, Release, Retry
from pgcapacity.client.aio import AsyncCapacity
from pgcapacity.client.errors import (
    CapacityBelowUsage,
    CapacityError,
    ClaimNotFound,
    CodeExhausted,
    CodeExpired,
    CodeFull,
    CodeInactive,
    CodeNotFound,
    HolderLimitExceeded,
    LockContended,
    PoolFull,
    ServiceUnavailable,
    ValidationError,
)
from pgcapacity.client.sync import Capacity

__all__ = [
    "AsyncCapacity",
    "Capacity",
    "CapacityBelowUsage",
    "CapacityError",
    "Claim",
    "ClaimNotFound",
    "CodeExhausted",
    "CodeExpired",
    "CodeFull",
    "CodeInactive",
    "CodeNotFound",
    "CodeStatus",
    "HolderLimitExceeded",
    "LockContended",
    "PoolFull",
    "Release",
    "Retry",
    "ServiceUnavailable",
    "ValidationError",
]
