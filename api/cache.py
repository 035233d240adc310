"""In-process read cache: TTL + LRU with a size bound, invalidated by code
(docs/architecture.md, "Cache and change feed").

Entries remember which codes they describe (a status: one code; a batch: up to 1000), so a
write to code X drops exactly the entries that mention X. A read that raced with a write
must not store what it read before the write: every read notes the invalidation counter
when it starts, and `put` refuses the value if any of its codes was invalidated since.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Hashable, Iterable
from dataclasses import dataclass

from cachetools import TTLCache

DASHBOARD_KEY = ("dashboard",)


class _CountingTTLCache(TTLCache):
    """TTLCache that counts LRU evictions (expired entries are not evictions)."""

    evictions = 0

    def popitem(self):
        self.evictions += 1
        return super().popitem()


@dataclass(frozen=True)
class CacheStats:
    hits: int
    misses: int
    evictions: int
    invalidations: int
    size: int
    max_size: int
    ttl_ms: int

    @property
    def hit_rate(self) -> float:
        total = self.hits + self.misses
        return self.hits / total if total else 0.0


class ResultCache:
    def __init__(self, max_size: int, ttl_ms: int):
        self.max_size = max_size
        self.ttl_ms = ttl_ms
        self._enabled = max_size > 0 and ttl_ms > 0
        self._data = _CountingTTLCache(maxsize=max(max_size, 1), ttl=ttl_ms / 1000)
        self._keys_by_code: dict[str, set[Hashable]] = defaultdict(set)
        self._clock = 0  # invalidation counter
        self._invalidated_at: dict[str, int] = {}
        self._floor = 0  # a full flush invalidates everything up to here
        self.hits = self.misses = self.invalidations = 0

    def ticket(self) -> int:
        """Taken before reading the database; passed back to `put`."""
        return self._clock

    def get(self, key: Hashable):
        if not self._enabled:
            return None
        value = self._data.get(key)
        if value is None:
            self.misses += 1
        else:
            self.hits += 1
        return value

    @property
    def enabled(self) -> bool:
        return self._enabled

    def still_fresh(self, codes: Iterable[str], ticket: int) -> bool:
        """Whether a value read since `ticket` still describes `codes`: no write to one of
        them (and no clear) was heard here since."""
        return ticket >= self._floor and not any(
            self._invalidated_at.get(code, -1) > ticket for code in codes
        )

    def put(self, key: Hashable, value, codes: Iterable[str], ticket: int) -> None:
        if not self._enabled:
            return
        codes = list(codes)
        if not self.still_fresh(codes, ticket):
            return  # a write to one of these codes landed while we were reading
        self._data[key] = value
        for code in codes:
            self._keys_by_code[code].add(key)
        if len(self._keys_by_code) > 4 * max(self.max_size, 1):
            self._compact()

    def invalidate(self, codes: Iterable[str]) -> None:
        self._clock += 1
        self.invalidations += 1
        for code in codes:
            self._invalidated_at[code] = self._clock
            for key in self._keys_by_code.pop(code, ()):
                self._data.pop(key, None)
        self._data.pop(DASHBOARD_KEY, None)  # every write moves the dashboard eventually
        if len(self._invalidated_at) > 4 * max(self.max_size, 1):
            self._compact()

    def invalidate_dashboard(self) -> None:
        self._data.pop(DASHBOARD_KEY, None)

    def clear(self) -> None:
        self._clock += 1
        self._floor = self._clock
        self._data.clear()
        self._keys_by_code.clear()
        self._invalidated_at.clear()

    def _compact(self) -> None:
        """Forget per-code history by raising the floor (tickets older than now are refused)."""
        self._clock += 1
        self._floor = self._clock
        self._invalidated_at.clear()
        live = set(self._data.keys())
        for code in list(self._keys_by_code):
            self._keys_by_code[code] &= live
            if not self._keys_by_code[code]:
                del self._keys_by_code[code]

    def stats(self) -> CacheStats:
        self._data.expire()
        return CacheStats(
            self.hits,
            self.misses,
            self._data.evictions,
            self.invalidations,
            len(self._data),
            self.max_size,
            self.ttl_ms,
        )
