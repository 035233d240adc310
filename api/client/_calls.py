"""What the sync and the async client share: the SQL they send, the rows they get back,
and the retry policy for LOCK_CONTENDED."""

from __future__ import annotations

import random
from dataclasses import dataclass, field, fields
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

# A claim's lease: a timedelta, or a PostgreSQL interval such as "15 minutes"; None takes
# the code's default lease (or none).
Lease = timedelta | str | None


@dataclass
class Claim:
    """Units of a code held by a holder (capacity.claim()'s result). With the sync client
    it is also a context manager: `with cap.claim(code, holder) as claim:` heartbeats in
    the background while the block runs and releases the claim when it ends."""

    claim_id: int
    token: UUID
    code: str
    holder: str
    usage_count: int
    max_uses: int
    remaining: int
    already_held: bool
    claimed_at: datetime
    units: int
    lease_expires_at: datetime | None
    fence: int
    _holding: Any = field(default=None, compare=False, repr=False)

    def __enter__(self) -> Claim:
        if self._holding is None:
            raise TypeError("only a claim made by pgcapacity.client.Capacity can be held")
        self._holding.start(self)
        return self

    def __exit__(self, *exc) -> None:
        self._holding.stop(self)


@dataclass(frozen=True)
class Release:
    """capacity.release()'s result: `released` is false when the claim had already ended."""

    claim_id: int | None
    code: str
    holder: str
    released: bool
    usage_count: int
    remaining: int


@dataclass(frozen=True)
class CodeStatus:
    """capacity.check()'s result; `reason` is the error a claim would get now."""

    code: str
    found: bool
    pool: str | None
    is_active: bool | None
    expires_at: datetime | None
    usage_count: int | None
    max_uses: int | None
    remaining: int | None
    can_claim: bool
    reason: str | None
    max_total_claims: int | None
    total_claims: int | None
    remaining_total: int | None


def _columns(cls) -> str:
    return ", ".join(f.name for f in fields(cls) if not f.name.startswith("_"))


RELEASE = f"SELECT {_columns(Release)} FROM capacity.release(%s::bigint, %s::uuid)"
RELEASE_HOLDER = f"SELECT {_columns(Release)} FROM capacity.release(%s::text, %s::text)"
HEARTBEAT = "SELECT capacity.heartbeat(%s::bigint, %s::uuid)"
ASSERT_HELD = "SELECT capacity.assert_held(%s::bigint, %s::uuid)"
CHECK = f"SELECT {_columns(CodeStatus)} FROM capacity.check(%s)"
USAGE = f"SELECT {_columns(CodeStatus)} FROM capacity.usage_batch(%s)"


def claim_key(claim: Claim | int, token: UUID | None) -> tuple[int, UUID | None]:
    """(claim_id, token) from a Claim, or from the id and token given apart."""
    return (claim.claim_id, claim.token) if isinstance(claim, Claim) else (claim, token)


def claim_query(
    code: str, holder: str, lock_mode: str | None, units: int, lease: Lease
) -> tuple[str, tuple]:
    """capacity.claim() with the arguments given; the others take the SQL defaults."""
    given = {"lock_mode": lock_mode, "units": None if units == 1 else units, "lease": lease}
    named = [(name, value) for name, value in given.items() if value is not None]
    arguments = "".join(f", {name} => %s" for name, _ in named)
    query = f"SELECT {_columns(Claim)} FROM capacity.claim(%s, %s{arguments})"
    return query, (code, holder, *(value for _, value in named))


@dataclass(frozen=True)
class Retry:
    """How LOCK_CONTENDED is retried: up to `attempts` tries in all, waiting a random time
    between 0 and base * 2**n seconds (capped at `cap`) before the n-th retry ("full
    jitter": contenders that failed together do not come back together)."""

    attempts: int = 5
    base: float = 0.05
    cap: float = 2.0

    def delay(self, retry: int) -> float:
        return random.uniform(0, min(self.cap, self.base * 2**retry))


DEFAULT_RETRY = Retry()
