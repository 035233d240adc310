"""Request and response bodies. Unknown fields in requests are refused (400)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

import msgspec

from pgcapacity import rules

Holder = Annotated[
    str,
    msgspec.Meta(
        min_length=1,
        max_length=rules.HOLDER_MAX_LENGTH,
        pattern=rules.HOLDER_PATTERN,
        description=f"who claims: {rules.HOLDER_RULE}",
    ),
]
CodeName = Annotated[
    str,
    msgspec.Meta(
        max_length=rules.CODE_INPUT_MAX_LENGTH,
        pattern=rules.CODE_PATTERN,
        description=rules.CODE_RULE,
    ),
]
PoolName = Annotated[str, msgspec.Meta(pattern=rules.POOL_PATTERN, description=rules.POOL_RULE)]
LockMode = Literal[rules.LOCK_MODES]  # type: ignore[valid-type]
Count = Annotated[int, msgspec.Meta(ge=0, le=rules.MAX_INTEGER)]
# A count, or null for "no limit". Litestar leaves a `minimum` of 0 out of such a union's
# schema (it skips constraints whose value is falsy), so the schema states it again.
CountOrNull = (
    Annotated[
        int,
        msgspec.Meta(ge=0, le=rules.MAX_INTEGER, extra_json_schema={"extra": {"minimum": 0}}),
    ]
    | None
)
Lease = Annotated[
    str,
    msgspec.Meta(
        max_length=rules.LEASE_MAX_LENGTH,
        pattern=rules.LEASE_PATTERN,
        description=f"how long the claim lasts without a heartbeat: {rules.LEASE_RULE}",
        examples=["15 minutes"],
    ),
]


class Request(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    pass


class ClaimRequest(Request):
    holder: Holder
    lock_mode: LockMode | None = None
    # Taken all at once or not at all (a group booking); a repeat returns the claim held.
    units: Annotated[int, msgspec.Meta(ge=1, le=rules.MAX_INTEGER)] = 1
    # Null: the code's default lease, if it has one.
    lease: Lease | None = None
    # Milliseconds to wait in the code's queue for room (capacity.claim_wait); 0: answer at
    # once. Shortened to PGCAPACITY_MAX_WAIT_MS.
    wait_ms: Annotated[int, msgspec.Meta(ge=0, le=rules.MAX_WAIT_MS)] = 0


class UsageRequest(Request):
    codes: Annotated[list[CodeName], msgspec.Meta(max_length=rules.MAX_USAGE_BATCH)]


class CodeSpec(Request):
    code: CodeName
    max_uses: Count
    # Absent keys keep the stored value on update; explicit null clears expires_at.
    pool: PoolName | msgspec.UnsetType = msgspec.UNSET
    is_active: bool | msgspec.UnsetType = msgspec.UNSET
    expires_at: datetime | msgspec.UnsetType | None = msgspec.UNSET
    metadata: dict[str, Any] | msgspec.UnsetType = msgspec.UNSET
    # 0: plain; N: capacity spread over N rows so concurrent claims do not queue (hot codes).
    slots: Annotated[int, msgspec.Meta(ge=0, le=rules.MAX_SLOTS)] | msgspec.UnsetType = (
        msgspec.UNSET
    )
    # Default lease of the code's claims; explicit null removes it.
    lease: Lease | msgspec.UnsetType | None = msgspec.UNSET
    # Claims the code admits over its whole life, released or not; explicit null removes
    # the cap. A capped code is never slotted.
    max_total_claims: CountOrNull | msgspec.UnsetType = msgspec.UNSET


class UpsertCodesRequest(Request):
    codes: Annotated[list[CodeSpec], msgspec.Meta(min_length=1, max_length=rules.MAX_UPSERT_BATCH)]


class HolderLimitRequest(Request):
    pool: PoolName
    holder: Holder
    max_claims: CountOrNull


class PoolLimitRequest(Request):
    pool: PoolName
    max_units: CountOrNull


class ExpireRequest(Request):
    # Absent: capacity.expire_idle_claims()'s own defaults.
    idle_seconds: (
        Annotated[int, msgspec.Meta(ge=0, le=rules.MAX_IDLE_SECONDS)] | msgspec.UnsetType
    ) = msgspec.UNSET
    batch_size: (
        Annotated[int, msgspec.Meta(ge=1, le=rules.MAX_EXPIRY_BATCH)] | msgspec.UnsetType
    ) = msgspec.UNSET


class Claim(msgspec.Struct):
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
    # Fencing token: larger than that of every claim of the code that ended before this one
    # was granted; a resource outside PostgreSQL refuses writes with a smaller one.
    fence: int


class Release(msgspec.Struct):
    claim_id: int | None
    code: str
    holder: str
    released: bool
    usage_count: int
    remaining: int


class Heartbeat(msgspec.Struct):
    claim_id: int
    last_seen_at: datetime


class CodeStatus(msgspec.Struct):
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
    # A redemption cap: claims the code admits over its life, admitted so far, left (all
    # null without a cap).
    max_total_claims: int | None
    total_claims: int | None
    remaining_total: int | None


class Usage(msgspec.Struct):
    codes: list[CodeStatus]


class CodePage(msgspec.Struct):
    """A page of codes; `next` is the `after` of the following page (null: the last page)."""

    codes: list[CodeStatus]
    next: str | None


class ClaimInfo(msgspec.Struct):
    """A claim without its token: active while `released_at` is null."""

    claim_id: int
    code: str
    pool: str
    holder: str
    claimed_at: datetime
    last_seen_at: datetime
    released_at: datetime | None
    end_reason: Literal["released", "expired", "revoked"] | None
    units: int
    lease_expires_at: datetime | None


class ClaimPage(msgspec.Struct):
    """A page of active claims; `next` is the `after` of the following page (null: the last
    page)."""

    claims: list[ClaimInfo]
    next: int | None


class PoolSummary(msgspec.Struct):
    pool: str
    codes: int
    active_codes: int
    full_codes: int
    near_capacity_codes: int
    units_used: int
    units_total: int
    active_claims: int
    claims_last_hour: int
    expiries_last_hour: int


class Dashboard(msgspec.Struct):
    refreshed_at: datetime | None
    pools: list[PoolSummary]


class ActivityBucket(msgspec.Struct):
    """Events that committed in one bucket, and the units in use at its end."""

    bucket_start: datetime
    claimed: int
    released: int
    expired: int
    revoked: int
    units_in_use: int


class Activity(msgspec.Struct):
    """A code's, a pool's or every code's activity over a window, oldest bucket first."""

    window: str
    bucket_seconds: int
    code: str | None
    pool: str | None
    buckets: list[ActivityBucket]


class UpsertResult(msgspec.Struct):
    inserted: int
    updated: int


class RevokeResult(msgspec.Struct):
    """The code is deactivated; `claims_ended` of its claims were active and are ended."""

    claims_ended: int
    revoked: Annotated[int, msgspec.Meta(description="deprecated: the same number as claims_ended")]


class HolderReleaseRequest(Request):
    holder: Holder


class HolderLimit(msgspec.Struct):
    pool: str
    holder: str
    max_claims: int | None


class PoolLimit(msgspec.Struct):
    pool: str
    max_units: int | None


class ExpiryResult(msgspec.Struct):
    expired: int
    codes_touched: int
    holders_touched: int
    more_pending: bool


class ErrorBody(msgspec.Struct):
    code: str
    message: str
    sqlstate: str
    details: dict[str, Any]


class ErrorResponse(msgspec.Struct):
    error: ErrorBody
