"""The rules of pgcapacity's input, stated once for the Python side.

The database enforces every one of them itself (sql/functions/_validation.sql, the CHECKs
of the schema, the functions' own argument checks); the HTTP layer states them again only
so that it can refuse bad input before a round trip and publish it in the OpenAPI
document. tests/sql/test_rules.py probes the SQL with each rule and fails when the two
disagree. Defaults are not restated here: where a caller leaves an argument out, the SQL
function's own default applies.
"""

from __future__ import annotations

from typing import Final

# A code: 1-64 characters of A-Z 0-9 _ - after trimming and upper-casing (both done by the
# database), so the pattern admits lower case and surrounding whitespace.
CODE_MAX_LENGTH: Final = 64
CODE_PATTERN: Final = rf"^[ \t\r\n]*[A-Za-z0-9_-]{{1,{CODE_MAX_LENGTH}}}[ \t\r\n]*$"
CODE_INPUT_MAX_LENGTH: Final = 200  # with the whitespace the database trims
CODE_RULE: Final = f"1-{CODE_MAX_LENGTH} of A-Z 0-9 _ - (trimmed, case-insensitive)"


def normalise_code(raw: str) -> str:
    """A code's canonical form, as capacity._normalise_code() makes it."""
    return raw.strip(" \t\r\n").upper()


# A holder: 1-256 characters, not only whitespace, no control characters.
HOLDER_MAX_LENGTH: Final = 256
HOLDER_PATTERN: Final = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$"
HOLDER_RULE: Final = f"1-{HOLDER_MAX_LENGTH} characters, not only spaces, no control characters"

# A pool: 1-64 letters, digits, _ . - (case-sensitive).
POOL_PATTERN: Final = r"^[A-Za-z0-9_.-]{1,64}$"
POOL_RULE: Final = "1-64 of A-Z a-z 0-9 _ . -"

# A lease over HTTP: whole numbers with units of a second or more, largest unit first and
# each unit once ("15 minutes", "1h 30m"), so every lease the pattern admits is a valid
# PostgreSQL interval of at least one second. The SQL functions take any such interval
# ("PT15M", "00:15:00" too).
_LEASE_UNITS = ("w|weeks?", "d|days?", "h|hrs?|hours?", "m|mins?|minutes?", "s|secs?|seconds?")
_LEASE_TERMS = [rf"[1-9][0-9]{{0,6}} *({unit})" for unit in _LEASE_UNITS]
_LEASE_FROM = [
    "".join([_LEASE_TERMS[i], *(f"( +{term})?" for term in _LEASE_TERMS[i + 1 :])])
    for i in range(5)
]
LEASE_PATTERN: Final = rf"^ *({'|'.join(_LEASE_FROM)}) *$"
LEASE_MAX_LENGTH: Final = 64
LEASE_RULE: Final = (
    'whole numbers with units w, d, h, m, s, largest first, each once: "15 minutes", "1h 30m"'
)

# capacity.claim()'s lock_mode argument.
LOCK_MODES: Final = ("wait", "nowait", "advisory")

MAX_INTEGER: Final = 2_147_483_647  # max_uses, max_claims: a PostgreSQL integer
MAX_SLOTS: Final = 256  # codes.slots and tune_slots(slots)
MAX_EXPIRY_BATCH: Final = 100_000  # expire_idle_claims(batch_size)

MAX_PAGE_SIZE: Final = 1000  # list_codes(), list_claims() page_size

# Limits of the HTTP API only (the SQL functions take any size).
MAX_USAGE_BATCH: Final = 1000  # codes per POST /v1/usage
MAX_UPSERT_BATCH: Final = 10_000  # codes per POST /v1/admin/codes
MAX_IDLE_SECONDS: Final = 10 * 365 * 86400  # POST /v1/admin/expire idle_seconds
MAX_WAIT_MS: Final = 3_600_000  # capacity.claim_wait(wait): at most an hour
PAGE_SIZE: Final = 100  # the HTTP listings' default `limit` (it computes `next` from it)
