// The Node client against a real pgcapacity database (DATABASE_URL), with Node's test
// runner: typed refusals, held claims, retries, the caller's transaction.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import pg from "pg";
import { Capacity, ClaimNotFound, CodeExhausted, CodeFull, LockContended, bySqlstate } from "../index.js";

const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL, max: 4 });
const sql = (text, params) => pool.query(text, params);

before(async () => {
  await sql(`SELECT capacity.upsert_codes('[{"code": "NODE-1", "max_uses": 1},
                                            {"code": "NODE-MANY", "max_uses": 50},
                                            {"code": "NODE-PROMO", "max_uses": 5, "max_total_claims": 1}]')`);
});
after(() => pool.end());

test("every error the SQL raises has its class", async () => {
  const { rows } = await sql(`SELECT name, sqlstate, aliases FROM capacity.error_codes()
                               WHERE sqlstate <= 'CP009' OR name IN ('SERVICE_UNAVAILABLE', 'CODE_EXHAUSTED')`);
  assert.equal(rows.length, 11);
  for (const row of rows) {
    for (const state of [row.sqlstate, ...row.aliases]) {
      assert.equal(bySqlstate.get(state).errorName, row.name, state);
    }
  }
});

test("claim, a full code as CodeFull, check, release", async () => {
  const cap = new Capacity(pool);
  const claim = await cap.claim("node-1", "ann");
  assert.equal(claim.code, "NODE-1");
  assert.equal(typeof claim.claim_id, "number");
  assert.equal((await cap.claim("NODE-1", "ann")).already_held, true);
  await assert.rejects(cap.claim("NODE-1", "bob"), (err) => {
    assert.ok(err instanceof CodeFull);
    assert.equal(err.sqlstate, "CP005");
    assert.equal(err.errorName, "CODE_FULL");
    assert.equal(err.detail.max_uses, 1);
    assert.ok(err.hint);
    return true;
  });
  assert.equal((await cap.check("NODE-1")).reason, "CODE_FULL");
  assert.equal((await cap.release(claim)).released, true);
  assert.equal((await cap.release(claim)).released, false);
  await assert.rejects(cap.heartbeat(claim), ClaimNotFound);
});

test("a claim of several units, given back whole by release", async () => {
  const cap = new Capacity(pool, { lockMode: "wait" });
  const before = (await cap.check("NODE-MANY")).usage_count;
  const claim = await cap.claim("NODE-MANY", "group-of-3", { units: 3 });
  assert.equal(claim.units, 3);
  assert.equal(claim.usage_count, before + 3);
  assert.equal((await cap.claim("NODE-MANY", "group-of-3", { units: 1 })).units, 3);
  assert.equal((await cap.release(claim)).usage_count, before);
});

test("a claim with a lease: lease_expires_at, renewed by heartbeat, none without", async () => {
  const cap = new Capacity(pool);
  const leased = await cap.claim("NODE-MANY", "leased", { lease: "15 minutes" });
  const minutes = (leased.lease_expires_at - leased.claimed_at) / 60_000;
  assert.ok(Math.abs(minutes - 15) < 0.1, String(minutes));
  const seen = await cap.heartbeat(leased);
  const { rows } = await sql("SELECT lease_expires_at FROM capacity.get_claim($1)", [leased.claim_id]);
  assert.equal(rows[0].lease_expires_at.getTime(), seen.getTime() + 15 * 60_000);
  assert.equal((await cap.claim("NODE-MANY", "unleased")).lease_expires_at, null);
  await cap.release(leased);
  await cap.releaseHolder("NODE-MANY", "unleased");
});

test("a redemption cap: CodeExhausted, and check's counts", async () => {
  const cap = new Capacity(pool);
  await cap.release(await cap.claim("NODE-PROMO", "first"));
  await assert.rejects(cap.claim("NODE-PROMO", "second"), CodeExhausted);
  const status = await cap.check("NODE-PROMO");
  assert.deepEqual([status.total_claims, status.remaining_total, status.reason], [1, 0, "CODE_EXHAUSTED"]);
});

test("assertHeld returns the fence of a held claim, ClaimNotFound once it ended", async () => {
  const cap = new Capacity(pool);
  const claim = await cap.claim("NODE-MANY", "fenced");
  assert.equal(typeof claim.fence, "number");
  assert.equal(await cap.assertHeld(claim), claim.fence);
  await cap.release(claim);
  await assert.rejects(cap.assertHeld(claim), ClaimNotFound);
});

test("withClaim heartbeats and releases even when the work throws", async () => {
  const cap = new Capacity(pool);
  const seen = async (id) =>
    (await sql("SELECT last_seen_at FROM capacity.claims WHERE claim_id = $1", [id])).rows[0].last_seen_at;
  let id;
  await assert.rejects(
    cap.withClaim("NODE-MANY", "worker", async (claim) => {
      id = claim.claim_id;
      const first = await seen(id);
      for (let i = 0; i < 200 && (await seen(id)).getTime() === first.getTime(); i++) {
        await new Promise((resolve) => setTimeout(resolve, 25));
      }
      assert.notEqual((await seen(id)).getTime(), first.getTime(), "no heartbeat");
      throw new Error("the work failed");
    }, { heartbeatMs: 20 }),
    /the work failed/,
  );
  const { rows } = await sql("SELECT end_reason FROM capacity.claims WHERE claim_id = $1", [id]);
  assert.equal(rows[0].end_reason, "released");
});

test("a claim on one client joins its transaction", async () => {
  const client = await pool.connect();
  try {
    await client.query("BEGIN");
    await new Capacity(client).claim("NODE-MANY", "in-tx");
    await client.query("ROLLBACK");
  } finally {
    client.release();
  }
  const { rows } = await sql("SELECT count(*)::int AS n FROM capacity.claims WHERE holder = 'in-tx'");
  assert.equal(rows[0].n, 0);
});

test("LockContended is retried until the lock is gone", async () => {
  const blocker = await pool.connect();
  try {
    await blocker.query("BEGIN");
    await blocker.query("SELECT 1 FROM capacity.codes WHERE code = 'NODE-MANY' FOR UPDATE");
    await assert.rejects(
      new Capacity(pool, { lockMode: "nowait", retry: { attempts: 2, baseMs: 1 } }).claim("NODE-MANY", "gives-up"),
      LockContended,
    );
    let retried;
    const wasRetried = new Promise((resolve) => { retried = resolve; });
    const cap = new Capacity(pool, {
      lockMode: "nowait", retry: { attempts: 1000, baseMs: 10, capMs: 20 }, onRetry: () => retried(),
    });
    const claiming = cap.claim("NODE-MANY", "patient");
    await wasRetried;
    await blocker.query("ROLLBACK");
    assert.equal((await claiming).holder, "patient");
  } finally {
    blocker.release();
  }
});
