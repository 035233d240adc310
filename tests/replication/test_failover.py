"""Failover without losing an acknowledged claim.

A primary with a synchronous standby (synchronous_standby_names, synchronous_commit =
on: a commit returns only once the standby has flushed it); the API connects with one
multi-host connection string (host=a,b target_session_attrs=read-write). Under claim and
release load the primary is killed outright (SIGKILL), the standby promoted (pg_ctl
promote: what pg_auto_failover's monitor does for you, docs/high-availability.md), and
the API must serve again by itself. Then every claim a client got a 201 for exists on
the new primary, every release a client got a 200 for has ended its claim, nothing is
oversold and reconcile finds no drift.

The clients behave as docs/high-availability.md asks: a request answered 503 (or cut
off) is retried with the same holder (a claim is idempotent per code and holder) or the
same claim id, until it has a definite answer.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

import httpx
import psycopg
import pytest

from tests.replication.conftest import Pair, replicated
from tests.support import CLIENT_AUTH, audit, live_server, settings_for, wait_for

CODE, MAX_USES = "FAILOVER", 24
WORKERS = 16  # each holds at most two claims: 32 wanted, 24 allowed, so the cap binds
BEFORE_KILL = 150  # acknowledged claims before the primary dies
AFTER_PROMOTION = 150  # and after the standby took over


@dataclass
class Worker:
    """One client's claims: the acknowledged ones it holds, the ones it released."""

    index: int
    held: list[dict] = field(default_factory=list)
    released: list[int] = field(default_factory=list)
    acknowledged: list[tuple[float, float]] = field(default_factory=list)  # (asked, answered)
    outcomes: Counter = field(default_factory=Counter)

    def claim(self, http: httpx.Client, holder: str) -> None:
        """Claims until the answer is definite: a 201 or 200 (already held: the earlier
        attempt did commit) or a refusal; a 503 or a cut connection is retried, also once
        the test stops adding claims (or the claim would be in use, unknown to anyone)."""
        while not abandon.is_set():
            asked = time.monotonic()
            r = send(http, "POST", f"/v1/codes/{CODE}/claims", json={"holder": holder})
            self.outcomes[outcome(r)] += 1
            if r is not None and r.status_code in (200, 201):
                self.held.append(r.json())
                self.acknowledged.append((asked, time.monotonic()))
                return
            if r is not None and r.status_code < 500:
                return  # CODE_FULL: nothing taken

    def release_oldest(self, http: httpx.Client) -> None:
        claim = self.held[0]
        headers = {"X-Claim-Token": claim["token"]}
        while not abandon.is_set():
            r = send(http, "DELETE", f"/v1/claims/{claim['claim_id']}", headers=headers)
            self.outcomes[f"release {outcome(r)}"] += 1
            if r is not None and r.status_code == 200:
                self.held.pop(0)
                self.released.append(claim["claim_id"])
                return

    def run(self, base: str) -> None:
        with httpx.Client(base_url=base, headers=CLIENT_AUTH, timeout=30) as http:
            n = 0
            while not stop.is_set():
                self.claim(http, f"w{self.index}-{n}")
                n += 1
                if len(self.held) == 2:
                    self.release_oldest(http)


stop = threading.Event()  # no new claims
abandon = threading.Event()  # no more retries either: the test has failed


def send(http: httpx.Client, method: str, url: str, **kwargs) -> httpx.Response | None:
    try:
        return http.request(method, url, **kwargs)
    except httpx.TransportError:
        return None


def outcome(r: httpx.Response | None) -> str:
    if r is None:
        return "cut off"
    return (
        r.json().get("error", {}).get("code", str(r.status_code))
        if r.status_code >= 400
        else str(r.status_code)
    )


@pytest.fixture(scope="module")
def pair() -> Iterator[Pair]:
    with replicated(synchronous=True) as pair:
        with psycopg.connect(pair.primary_url, autocommit=True) as conn:
            sync = conn.execute("SELECT sync_state FROM pg_stat_replication").fetchall()
            assert sync == [("sync",)], sync
            codes = [{"code": CODE, "max_uses": MAX_USES}]
            conn.execute("SELECT capacity.upsert_codes(%s::jsonb)", (json.dumps(codes),))
        yield pair


def test_a_killed_primary_loses_no_acknowledged_claim(pair, capsys):
    settings = settings_for(pair.failover_url(), pool_max=8, pool_timeout_ms=2000)
    workers = [Worker(i) for i in range(WORKERS)]
    stop.clear()
    abandon.clear()
    with live_server(settings) as base:
        threads = [threading.Thread(target=w.run, args=(base,), daemon=True) for w in workers]
        for t in threads:
            t.start()
        try:
            assert wait_for(lambda: total(workers) >= BEFORE_KILL, timeout=60)
            before = total(workers)
            killed_at = time.monotonic()
            pair.primary.cluster.kill()
            pair.standby.cluster.promote()
            promoted_at = time.monotonic()
            served_again = wait_for(lambda: total(workers) >= before + AFTER_PROMOTION, 90)
        finally:
            stop.set()
            for t in threads:
                t.join(60)
            abandon.set()
    assert served_again, "the API did not serve claims again after the promotion"

    held = [c for w in workers for c in w.held]
    released = [i for w in workers for i in w.released]
    with psycopg.connect(pair.standby_url) as conn:
        assert conn.execute("SELECT pg_is_in_recovery()").fetchone() == (False,)
        rows = dict(
            (claim_id, (holder, released_at))
            for claim_id, holder, released_at in conn.execute(
                "SELECT claim_id, holder, released_at FROM capacity.claims"
            )
        )
        usage = conn.execute(
            "SELECT usage_count FROM capacity.codes WHERE code = %s", (CODE,)
        ).fetchone()[0]
    lost = [c["claim_id"] for c in held if c["claim_id"] not in rows]
    lost += [i for i in released if i not in rows]
    assert lost == [], f"acknowledged claims missing on the new primary: {lost}"
    ended = [c["claim_id"] for c in held if rows[c["claim_id"]][1] is not None]
    assert ended == [], f"claims still held by their clients but ended: {ended}"
    revived = [i for i in released if rows[i][1] is None]
    assert revived == [], f"acknowledged releases undone by the failover: {revived}"
    assert usage <= MAX_USES
    assert usage == len(held), "every unit in use is a claim some client knows it holds"
    audit(pair.standby_url)

    outcomes = sum((w.outcomes for w in workers), Counter())
    # The first claim asked for after the promotion and acknowledged.
    back_at = min(done for w in workers for asked, done in w.acknowledged if asked > promoted_at)
    with capsys.disabled():
        print(
            f"\nfailover: {before} claims acknowledged before the kill,"
            f" {total(workers) - before} after; promotion took"
            f" {promoted_at - killed_at:.2f} s, claims served again within"
            f" {back_at - promoted_at:.2f} s of it ({back_at - killed_at:.2f} s after the kill); {len(held) + len(released)} acknowledged"
            f" claims all on the new primary ({len(released)} released, {len(held)} held),"
            f" usage {usage} of {MAX_USES}; answers: {dict(outcomes)}"
        )


def total(workers: list[Worker]) -> int:
    return sum(len(w.held) + len(w.released) for w in workers)
