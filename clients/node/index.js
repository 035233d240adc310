// pgcapacity for Node.js: the capacity.* SQL functions over node-postgres (a pg.Pool, or
// one pg.Client whose transaction the calls join), with typed results, one error class
// per error name, and LOCK_CONTENDED retried with backoff and full jitter.
import { errors, translate } from "./errors.js";

export * from "./errors.js";
export const {
  ValidationError, CodeNotFound, CodeInactive, CodeExpired, CodeFull, HolderLimitExceeded,
  ClaimNotFound, LockContended, CapacityBelowUsage, ServiceUnavailable, CodeExhausted,
  PoolFull,
} = errors;

const CLAIM_COLUMNS = "claim_id, token, code, holder, usage_count, max_uses, remaining, already_held, claimed_at, units, lease_expires_at, fence";
const RELEASE_COLUMNS = "claim_id, code, holder, released, usage_count, remaining";
const STATUS_COLUMNS =
  "code, found, pool, is_active, expires_at, usage_count, max_uses, remaining, can_claim, reason, " +
  "max_total_claims, total_claims, remaining_total";

// bigint ids arrive as strings from node-postgres: numbers below 2**53 are exact.
const claimRow = (r) => ({ ...r, claim_id: Number(r.claim_id), fence: Number(r.fence) });
const releaseRow = (r) => ({ ...r, claim_id: r.claim_id === null ? null : Number(r.claim_id) });

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** [claim_id, token] from a claim row, or from the id and token given apart. */
const claimKey = (claim, token) =>
  typeof claim === "object" ? [claim.claim_id, claim.token] : [claim, token ?? null];

export class Capacity {
  /**
   * @param {import("pg").Pool | import("pg").Client} db
   * @param {{lockMode?: string, retry?: {attempts?: number, baseMs?: number, capMs?: number},
   *          onRetry?: (attempt: number, err: Error) => void}} [options]
   */
  constructor(db, options = {}) {
    this.db = db;
    this.lockMode = options.lockMode;
    this.retry = { attempts: 5, baseMs: 50, capMs: 2000, ...options.retry };
    this.onRetry = options.onRetry;
  }

  async #query(sql, params) {
    try {
      return (await this.db.query(sql, params)).rows;
    } catch (err) {
      throw translate(err);
    }
  }

  /**
   * `units` units (default 1) of `code` for `holder`, all or none (the holder's existing
   * claim, whatever its units, if it has one). `lease` (a PostgreSQL interval such as
   * "15 minutes") ends the claim unless a heartbeat renews it in time; the code's default
   * lease applies when it is not given.
   */
  async claim(code, holder, { lockMode, units, lease } = {}) {
    // Only the arguments given: the others take the SQL function's defaults.
    const given = Object.entries({ lock_mode: lockMode ?? this.lockMode, units, lease })
      .filter(([, value]) => value !== undefined);
    const named = given.map(([name], i) => `, ${name} => $${i + 3}`).join("");
    const sql = `SELECT ${CLAIM_COLUMNS} FROM capacity.claim($1, $2${named})`;
    const params = [code, holder, ...given.map(([, value]) => value)];
    for (let attempt = 1; ; attempt++) {
      try {
        return claimRow((await this.#query(sql, params))[0]);
      } catch (err) {
        if (!(err instanceof errors.LockContended) || attempt >= this.retry.attempts) throw err;
        this.onRetry?.(attempt, err);
        const ceiling = Math.min(this.retry.capMs, this.retry.baseMs * 2 ** (attempt - 1));
        await sleep(Math.random() * ceiling); // full jitter
      }
    }
  }

  /** Gives the unit back; `released` is false when the claim had already ended. */
  async release(claim, token) {
    const rows = await this.#query(`SELECT ${RELEASE_COLUMNS} FROM capacity.release($1::bigint, $2::uuid)`, claimKey(claim, token));
    return releaseRow(rows[0]);
  }

  /** Releases the holder's active claim on `code` without its id or token. */
  async releaseHolder(code, holder) {
    const rows = await this.#query(`SELECT ${RELEASE_COLUMNS} FROM capacity.release($1::text, $2::text)`, [code, holder]);
    return releaseRow(rows[0]);
  }

  /** Keeps a claim alive; ClaimNotFound once it has ended. */
  async heartbeat(claim, token) {
    const rows = await this.#query("SELECT capacity.heartbeat($1::bigint, $2::uuid) AS last_seen_at", claimKey(claim, token));
    return rows[0].last_seen_at;
  }

  /**
   * The claim's fence, once it is locked as held until the transaction ends (with a
   * Client inside BEGIN ... COMMIT, the transaction whose writes it guards); ClaimNotFound
   * when it is no longer held.
   */
  async assertHeld(claim, token) {
    const rows = await this.#query("SELECT capacity.assert_held($1::bigint, $2::uuid) AS fence", claimKey(claim, token));
    return Number(rows[0].fence);
  }

  async check(code) {
    return (await this.#query(`SELECT ${STATUS_COLUMNS} FROM capacity.check($1)`, [code]))[0];
  }

  async usage(codes) {
    return this.#query(`SELECT ${STATUS_COLUMNS} FROM capacity.usage_batch($1::text[])`, [codes]);
  }

  /**
   * Claims, runs `work(claim)` while heartbeating every `heartbeatMs`, and releases the
   * claim when `work` ends, whether it returns or throws; returns what `work` returns.
   */
  async withClaim(code, holder, work, { heartbeatMs = 60_000, lockMode, units, lease } = {}) {
    const claim = await this.claim(code, holder, { lockMode, units, lease });
    const timer = heartbeatMs > 0
      ? setInterval(() => this.heartbeat(claim).catch(() => {}), heartbeatMs)
      : undefined;
    try {
      return await work(claim);
    } finally {
      clearInterval(timer);
      await this.release(claim);
    }
  }
}
