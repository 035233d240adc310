"""Activity over time from the event log (capacity.activity), kept per series.

A dashboard asks for the same series every few seconds. Buckets that have ended do not
change, so after the first read of a series only its newest buckets are read again (two
buckets' worth of events, whatever the window); the whole span is read again every few
minutes, for events that committed late and for pruning.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from datetime import timedelta
from typing import Final

from psycopg.rows import args_row
from psycopg_pool import AsyncConnectionPool

from pgcapacity import schemas
from pgcapacity.db import fetch_all

# window name -> (span, bucket)
WINDOWS: Final = {
    "1h": (timedelta(hours=1), timedelta(minutes=1)),
    "1d": (timedelta(days=1), timedelta(minutes=10)),
}
FULL_READ_SECONDS: Final = 300  # the whole span is read again at least this often
FRESH_SECONDS: Final = 1.0  # readers within this long of a read share it
MAX_SERIES: Final = 64  # series kept (least recently read dropped first)

ACTIVITY = (
    f"SELECT {', '.join(schemas.ActivityBucket.__struct_fields__)}"
    " FROM capacity.activity(%s, %s, %s, %s)"
)
AS_BUCKET = args_row(schemas.ActivityBucket)


class _Series:
    def __init__(self, buckets: list[schemas.ActivityBucket], now: float) -> None:
        self.buckets = buckets
        self.fully_read_at = now
        self.read_at = now


class ActivitySeries:
    def __init__(self, pool: AsyncConnectionPool) -> None:
        self.pool = pool
        self._series: OrderedDict[tuple, _Series] = OrderedDict()
        self._lock = asyncio.Lock()  # one read at a time builds on the kept buckets

    async def read(self, window: str, code: str | None, pool: str | None) -> schemas.Activity:
        span, bucket = WINDOWS[window]
        key = (window, code, pool)
        async with self._lock:
            series = self._series.get(key)
            now = time.monotonic()
            if series is None or now - series.fully_read_at > FULL_READ_SECONDS:
                series = _Series(await self._fetch(span, bucket, code, pool), now)
            elif now - series.read_at > FRESH_SECONDS:
                newest = await self._fetch(2 * bucket, bucket, code, pool)
                older = [b for b in series.buckets if b.bucket_start < newest[0].bucket_start]
                series.buckets = (older + newest)[-(span // bucket) :]
                series.read_at = now
            self._series[key] = series
            self._series.move_to_end(key)
            while len(self._series) > MAX_SERIES:
                self._series.popitem(last=False)
        return schemas.Activity(
            window, int(bucket.total_seconds()), code, pool, list(series.buckets)
        )

    async def _fetch(self, span, bucket, code, pool) -> list[schemas.ActivityBucket]:
        return await fetch_all(
            self.pool, ACTIVITY, (span, bucket, code, pool), row_factory=AS_BUCKET
        )

    def clear(self) -> None:
        self._series.clear()
