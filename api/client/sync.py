"""The client for applications calling pgcapacity's SQL with psycopg (sync)."""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from uuid import UUID

import psycopg
from psycopg.rows import class_row
from psycopg_pool import ConnectionPool

from pgcapacity.client import _calls
from pgcapacity.client._calls import DEFAULT_RETRY, Claim, CodeStatus, Release, Retry
from pgcapacity.client.errors import LockContended, translate

log = logging.getLogger("pgcapacity.client")


class Capacity:
    """pgcapacity over a psycopg connection pool (each call in its own transaction) or
    one connection (each call in that connection's transaction, so a claim commits or
    rolls back with the caller's own writes).

        cap = Capacity(pool)
        with cap.claim("CLASS-7A", "student-42") as claim:
            ...  # heartbeats every heartbeat_every seconds; released when the block ends

    LOCK_CONTENDED is retried with backoff and jitter (`retry`); every other refusal
    raises its own exception (pgcapacity.client.errors: CodeFull, ...)."""

    def __init__(
        self,
        source: ConnectionPool | psycopg.Connection,
        *,
        lock_mode: str | None = None,
        retry: Retry = DEFAULT_RETRY,
        heartbeat_every: float | None = 60.0,
        on_retry: Callable[[int, LockContended], None] | None = None,
    ):
        self.source = source
        self.lock_mode = lock_mode
        self.retry = retry
        self.heartbeat_every = heartbeat_every
        self.on_retry = on_retry

    @contextlib.contextmanager
    def _connection(self) -> Iterator[psycopg.Connection]:
        try:
            if isinstance(self.source, ConnectionPool):
                with self.source.connection() as conn:
                    yield conn
            else:
                yield self.source
        except psycopg.Error as err:
            raise translate(err) from err

    def _one(self, query: str, params: tuple, cls=None):
        with self._connection() as conn:
            cur = conn.cursor(row_factory=class_row(cls)) if cls else conn.cursor()
            return cur.execute(query, params).fetchone()

    def claim(
        self,
        code: str,
        holder: str,
        *,
        lock_mode: str | None = None,
        units: int = 1,
        lease: _calls.Lease = None,
    ) -> Claim:
        """`units` units of `code` for `holder`, all or none (the holder's existing claim,
        whatever its units, if it has one), with `lease` when given (heartbeats renew it)."""
        query, params = _calls.claim_query(code, holder, lock_mode or self.lock_mode, units, lease)
        for attempt in range(1, self.retry.attempts + 1):
            try:
                claim = self._one(query, params, Claim)
            except LockContended as err:
                if attempt == self.retry.attempts:
                    raise
                if self.on_retry:
                    self.on_retry(attempt, err)
                time.sleep(self.retry.delay(attempt - 1))
                continue
            claim._holding = _Heartbeats(self)
            return claim
        raise AssertionError("unreachable")

    def release(self, claim: Claim | int, token: UUID | None = None) -> Release:
        """Gives the unit back; `released` is false if the claim had already ended."""
        return self._one(_calls.RELEASE, _calls.claim_key(claim, token), Release)

    def release_holder(self, code: str, holder: str) -> Release:
        """Releases the holder's active claim on `code` without its id or token."""
        return self._one(_calls.RELEASE_HOLDER, (code, holder), Release)

    def heartbeat(self, claim: Claim | int, token: UUID | None = None) -> datetime:
        """Keeps a claim alive; ClaimNotFound once it has ended (released, expired, revoked)."""
        return self._one(_calls.HEARTBEAT, _calls.claim_key(claim, token))[0]

    def assert_held(self, claim: Claim | int, token: UUID | None = None) -> int:
        """The claim's fence, once it is locked as held until this transaction ends (use it
        with Capacity(connection), in the transaction whose writes it guards); ClaimNotFound
        when it is no longer held."""
        return self._one(_calls.ASSERT_HELD, _calls.claim_key(claim, token))[0]

    def check(self, code: str) -> CodeStatus:
        return self._one(_calls.CHECK, (code,), CodeStatus)

    def usage(self, codes: list[str]) -> list[CodeStatus]:
        with self._connection() as conn:
            cur = conn.cursor(row_factory=class_row(CodeStatus))
            return cur.execute(_calls.USAGE, (codes,)).fetchall()


class _Heartbeats:
    """The background heartbeats of one held claim (a daemon thread), and its release."""

    def __init__(self, client: Capacity):
        self.client = client
        self.stopped = threading.Event()
        self.thread: threading.Thread | None = None
        self.lost: Exception | None = None  # why heartbeats stopped early

    def start(self, claim: Claim) -> None:
        every = self.client.heartbeat_every
        if every:
            self.thread = threading.Thread(target=self._beat, args=(claim, every), daemon=True)
            self.thread.start()

    def _beat(self, claim: Claim, every: float) -> None:
        while not self.stopped.wait(every):
            try:
                self.client.heartbeat(claim)
            except Exception as err:  # the claim ended, or the database is away for now
                log.warning("heartbeat of claim %s failed: %s", claim.claim_id, err)
                if getattr(err, "name", None) == "CLAIM_NOT_FOUND":
                    self.lost = err
                    return

    def stop(self, claim: Claim) -> None:
        self.stopped.set()
        if self.thread is not None:
            self.thread.join()
        self.client.release(claim)
