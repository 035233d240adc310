"""The HTTP rows of the benchmark: the real API (`pgcapacity serve`, its own process) under
wrk, on the same scratch database as the SQL rows.

wrk is a C load generator, so the client side costs little next to the server; its Lua
scripts keep every request meaningful (random codes, fresh holders, each claim released
with its own token). The SQL rows of the same run are the comparison.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import httpx

from pgcapacity import pgserver
from pgcapacity_bench import cpustat
from pgcapacity_bench.report import Row
from pgcapacity_bench.workloads import HOT_CODE, SPREAD_CODES

# The client token of the API the bench starts: its writes run with auth on, as deployed.
TOKEN = "pgcapacity-bench-token"
# One Lua prelude: random spread codes and a per-thread holder counter.
PRELUDE = f"""
local codes = {SPREAD_CODES}
local n = 0
function code() return string.format("BENCH-S%05d", math.random(0, codes - 1)) end
function init(args) math.randomseed(os.time() + tonumber(tostring({{}}):sub(8), 16)) end
"""

SCRIPTS = {
    # GET /v1/codes/{code} on one code: after the first call, served from the cache.
    "http-status-cached": f'wrk.method = "GET"\nwrk.path = "/v1/codes/{HOT_CODE}"\n',
    # GET /v1/codes/{code} on random codes, cache off: one capacity.check() per request.
    "http-status": PRELUDE
    + 'request = function() return wrk.format("GET", "/v1/codes/" .. code()) end\n',
    # POST /v1/usage with 100 random codes (cache off).
    "http-usage": PRELUDE
    + """
request = function()
  local list = {}
  for i = 1, 100 do list[i] = '"' .. code() .. '"' end
  return wrk.format("POST", "/v1/usage", {["Content-Type"] = "application/json"},
                    '{"codes": [' .. table.concat(list, ",") .. ']}')
end
""",
    # POST a claim on a random code, then DELETE it with its token: a claim+release pair,
    # like the SQL rows. Pending releases are queued per thread.
    "http-claim": PRELUDE
    + f'local auth = "Bearer {TOKEN}"  -- writes are measured with auth on\n'
    + """
local pending = {}
claims, releases = 0, 0  -- globals, so that done() can read them with thread:get()
function setup(thread) thread:set("id", math.random(1, 1e9)) end
request = function()
  local r = table.remove(pending)
  if r then
    return wrk.format("DELETE", "/v1/claims/" .. r[1],
                      {["X-Claim-Token"] = r[2], ["Authorization"] = auth})
  end
  n = n + 1
  return wrk.format("POST", "/v1/codes/" .. code() .. "/claims",
                    {["Content-Type"] = "application/json", ["Authorization"] = auth},
                    '{"holder": "w' .. tostring(id) .. '-' .. n .. '"}')
end
response = function(status, headers, body)
  if status == 201 then
    claims = claims + 1
    local id, token = body:match('"claim_id":(%d+),"token":"([%x-]+)"')
    if id then table.insert(pending, {id, token}) end
  elseif status == 200 and body:find('"released":true') then
    releases = releases + 1
  end
end
""",
}
# What one op is, for the rows' throughput: the claim rows count pairs.
REQUESTS_PER_OP = {"http-claim": 2}
# The same claim+release pairs in direct SQL (the `spread` workload in the default lock
# mode), run just before each http-claim row against the same database while that API
# serves nothing: the HTTP claim's ratio compares two runs a few seconds apart, not with
# the `spread` row of minutes before (this machine's speed drifts between them), and
# both with the API's background work (change feed, dashboard refreshes) running.
SQL_BESIDE_CLAIM = "sql-claim"
# The ratio columns: a cached status against a SQL round trip, claim+release against the
# same pairs in SQL beside it. The uncached reads have no single SQL row to compare with
# (the `read` row does both calls).
SQL_COUNTERPART = {"http-status-cached": "select1", "http-claim": SQL_BESIDE_CLAIM}
HTTP_WORKLOADS = list(SCRIPTS)
# The HTTP part of the table, in order.
HTTP_TABLE = [SQL_BESIDE_CLAIM if n == "http-claim" else n for n in HTTP_WORKLOADS] + ["http-claim"]


def wrk_path() -> str:
    found = shutil.which("wrk")
    if not found:
        raise RuntimeError(
            "the HTTP rows need wrk (Debian: apt-get install wrk; make setup does it)"
        )
    return found


@contextmanager
def api_server(
    db: str,
    *,
    cache_ttl_ms: int,
    pool_max: int,
    workers: int = 1,
    env: dict | None = None,
):
    """`pgcapacity serve` in its own process on a free port, with `workers` worker processes
    of `pool_max` connections each and writes open to TOKEN; yields its base URL."""
    port = pgserver.free_port()
    env = (
        os.environ
        | {
            "DATABASE_URL": db,
            "PGCAPACITY_PORT": str(port),
            "PGCAPACITY_WORKERS": str(workers),
            "PGCAPACITY_CLIENT_TOKENS": TOKEN,
            "PGCAPACITY_CACHE_TTL_MS": str(cache_ttl_ms),
            "PGCAPACITY_POOL_MIN": str(pool_max),
            "PGCAPACITY_POOL_MAX": str(pool_max),
            "PGCAPACITY_HOT_CLAIMS_PER_MIN": "0",  # the bench decides which codes are slotted
        }
        | (env or {})
    )
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "pgcapacity.cli", "serve", "--log-level", "warning"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            yield _wait_ready(f"http://127.0.0.1:{port}", proc, log)
        finally:
            proc.terminate()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()


def _wait_ready(base: str, proc: subprocess.Popen, log) -> str:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if httpx.get(f"{base}/health/ready", timeout=2).status_code == 200:
                return base
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    log.seek(0)
    raise RuntimeError(f"pgcapacity serve did not start:\n{log.read().decode()[-2000:]}")


def run_wrk(base: str, name: str, clients: int, seconds: float) -> Row:
    """One wrk run of script `name`; the row also says how much of the machine's CPU time
    a hypervisor took meanwhile (its steal, as runner.measure gives the SQL rows')."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(SCRIPTS[name])
        script.write(DONE)
    try:
        threads = max(1, min(2, clients))
        before = cpustat.sample()
        out = subprocess.run(
            [
                wrk_path(),
                f"-t{threads}",
                f"-c{clients}",
                f"-d{max(1, round(seconds))}s",
                "--latency",
                "-s",
                script.name,
                base,
            ],
            capture_output=True,
            text=True,
            timeout=seconds + 60,
            check=True,
        ).stdout
        steal = cpustat.steal_share(before, cpustat.sample())
    finally:
        Path(script.name).unlink()
    row = parse(out, name, clients)
    row.steal = steal
    return row


# Totals of the Lua counters, printed by wrk at the end.
DONE = """
local threads = {}
local old_setup = setup
function setup(thread)
  table.insert(threads, thread)
  if old_setup then old_setup(thread) end
end
function done(summary, latency, requests)
  local c, r = 0, 0
  for _, t in ipairs(threads) do c = c + (t:get("claims") or 0); r = r + (t:get("releases") or 0) end
  io.write(string.format("pgcapacity: claims=%d releases=%d errors=%d\\n", c, r,
           summary.errors.status + summary.errors.connect + summary.errors.read
           + summary.errors.write + summary.errors.timeout))
end
"""

_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def _ms(text: str, pct: str) -> float | None:
    m = re.search(rf"^\s*{pct}%\s+([\d.]+)(us|ms|s)\s*$", text, re.M)
    return float(m.group(1)) * _UNITS[m.group(2)] if m else None


def parse(out: str, name: str, clients: int) -> Row:
    m = re.search(r"(\d+) requests in ([\d.]+)(m?s)", out)
    requests = int(m.group(1))
    seconds = float(m.group(2)) / (1000 if m.group(3) == "ms" else 1)
    non2xx = int(m.group(1)) if (m := re.search(r"Non-2xx or 3xx responses: (\d+)", out)) else 0
    m = re.search(r"pgcapacity: claims=(\d+) releases=(\d+) errors=(\d+)", out)
    claims, releases, errors = (int(g) for g in m.groups()) if m else (0, 0, 0)
    problems = []
    if non2xx + errors:
        problems.append(f"{non2xx + errors} of {requests} requests failed")
    if name == "http-claim":
        ops = releases  # pairs that completed: a claim answered 201, its release released
        if claims - releases > 2 * clients:
            problems.append(f"{claims - releases} claims not released")  # only those in flight
    else:
        ops = (requests - non2xx - errors) // REQUESTS_PER_OP.get(name, 1)
    return Row(
        workload=name,
        lock_mode=None,
        clients=clients,
        seconds=seconds,
        ops=ops,
        ops_per_s=round(ops / seconds, 1) if seconds else 0.0,
        p50_ms=_ms(out, "50"),
        p95_ms=None,
        p99_ms=_ms(out, "99"),  # wrk has no p95
        contention=0,
        retries=0,
        giveups=0,
        full=0,
        refused=0,
        errors=non2xx + errors,
        problems=problems,
        audited=name == "http-claim",
    )
