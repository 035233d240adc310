"""One exception class per error name of capacity.error_codes(), raised from the database's
error with its SQLSTATE, message, DETAIL (parsed) and HINT."""

from __future__ import annotations

import json

import psycopg


class CapacityError(Exception):
    """A pgcapacity error: `name` and `sqlstate` as capacity.error_codes() lists them."""

    name = "INTERNAL_ERROR"
    sqlstate = "CP016"

    def __init__(self, message: str, detail: dict | None = None, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.detail = detail or {}
        self.hint = hint

    def __str__(self) -> str:
        return self.message + (f" (hint: {self.hint})" if self.hint else "")


def _error(name: str, sqlstate: str, doc: str) -> type[CapacityError]:
    words = "".join(part.capitalize() for part in name.split("_"))
    return type(words, (CapacityError,), {"name": name, "sqlstate": sqlstate, "__doc__": doc})


ValidationError = _error("VALIDATION_ERROR", "CP001", "The input is malformed.")
CodeNotFound = _error("CODE_NOT_FOUND", "CP002", "No code with this name exists.")
CodeInactive = _error("CODE_INACTIVE", "CP003", "The code is deactivated or revoked.")
CodeExpired = _error("CODE_EXPIRED", "CP004", "The code is past its expires_at.")
CodeFull = _error("CODE_FULL", "CP005", "Every unit of the code is in use.")
HolderLimitExceeded = _error(
    "HOLDER_LIMIT_EXCEEDED", "CP006", "The holder holds its maximum of claims in the pool."
)
ClaimNotFound = _error("CLAIM_NOT_FOUND", "CP007", "No active claim matches this id (and token).")
LockContended = _error("LOCK_CONTENDED", "CP008", "A lock or serialization conflict: retry.")
CapacityBelowUsage = _error(
    "CAPACITY_BELOW_USAGE", "CP009", "A new limit would be below the units in use."
)
CodeExhausted = _error(
    "CODE_EXHAUSTED", "CP017", "The code has admitted all the claims it ever admits."
)
PoolFull = _error("POOL_FULL", "CP018", "Every unit the code's pool may have in use is in use.")
ServiceUnavailable = _error(
    "SERVICE_UNAVAILABLE", "CP015", "The database stopped the call (timeout, shutdown): retry."
)

BY_SQLSTATE: dict[str, type[CapacityError]] = {
    cls.sqlstate: cls
    for cls in (
        ValidationError,
        CodeNotFound,
        CodeInactive,
        CodeExpired,
        CodeFull,
        HolderLimitExceeded,
        ClaimNotFound,
        LockContended,
        CapacityBelowUsage,
        CodeExhausted,
        PoolFull,
        ServiceUnavailable,
    )
}
# SQLSTATEs of PostgreSQL's own that mean the same (error_codes().aliases).
BY_SQLSTATE |= {state: LockContended for state in ("55P03", "40P01", "40001")}
BY_SQLSTATE |= {
    state: ServiceUnavailable
    for state in ("57014", "57P01", "57P02", "57P03", "08000", "08001", "08003", "08004", "08006")
}


def translate(err: psycopg.Error) -> Exception:
    """The pgcapacity exception for a database error, or the error itself if it is none."""
    cls = BY_SQLSTATE.get(err.sqlstate or "")
    if cls is None:
        return err
    diag = err.diag
    try:
        detail = json.loads(diag.message_detail) if diag.message_detail else {}
    except ValueError:
        detail = {"detail": diag.message_detail}
    if not isinstance(detail, dict):
        detail = {"detail": detail}
    return cls(diag.message_primary or str(err), detail, diag.message_hint)
