// One error class per name of capacity.error_codes(), built from node-postgres' error
// (its `code` is the SQLSTATE; `detail` is pgcapacity's JSON context; `hint` says what
// to do).

export class CapacityError extends Error {
  /** @param {string} message @param {object} detail @param {string | undefined} hint */
  constructor(message, detail = {}, hint = undefined) {
    super(message);
    this.name = new.target.name;
    this.detail = detail;
    this.hint = hint;
  }
}

const CATALOG = [
  ["ValidationError", "VALIDATION_ERROR", "CP001"],
  ["CodeNotFound", "CODE_NOT_FOUND", "CP002"],
  ["CodeInactive", "CODE_INACTIVE", "CP003"],
  ["CodeExpired", "CODE_EXPIRED", "CP004"],
  ["CodeFull", "CODE_FULL", "CP005"],
  ["HolderLimitExceeded", "HOLDER_LIMIT_EXCEEDED", "CP006"],
  ["ClaimNotFound", "CLAIM_NOT_FOUND", "CP007"],
  ["LockContended", "LOCK_CONTENDED", "CP008"],
  ["CapacityBelowUsage", "CAPACITY_BELOW_USAGE", "CP009"],
  ["ServiceUnavailable", "SERVICE_UNAVAILABLE", "CP015"],
  ["CodeExhausted", "CODE_EXHAUSTED", "CP017"],
  ["PoolFull", "POOL_FULL", "CP018"],
];

/** @type {Record<string, typeof CapacityError>} */
export const errors = {};
/** @type {Map<string, typeof CapacityError>} */
export const bySqlstate = new Map();
for (const [className, errorName, sqlstate] of CATALOG) {
  const cls = {
    [className]: class extends CapacityError {
      static errorName = errorName;
      static sqlstate = sqlstate;
      get errorName() { return errorName; }
      get sqlstate() { return sqlstate; }
    },
  }[className];
  errors[className] = cls;
  bySqlstate.set(sqlstate, cls);
}
// PostgreSQL's own SQLSTATEs that mean the same (capacity.error_codes().aliases).
for (const state of ["55P03", "40P01", "40001"]) bySqlstate.set(state, errors.LockContended);
for (const state of ["57014", "57P01", "57P02", "57P03", "08000", "08001", "08003", "08004", "08006"]) {
  bySqlstate.set(state, errors.ServiceUnavailable);
}

/** The pgcapacity error for a node-postgres error, or the error itself. */
export function translate(err) {
  const cls = err && bySqlstate.get(err.code);
  if (!cls) return err;
  let detail = {};
  if (err.detail) {
    try {
      const parsed = JSON.parse(err.detail);
      detail = parsed && typeof parsed === "object" ? parsed : { detail: parsed };
    } catch {
      detail = { detail: err.detail };
    }
  }
  const translated = new cls(err.message, detail, err.hint);
  translated.cause = err;
  return translated;
}
