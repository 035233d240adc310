// Types of the pgcapacity client (index.js).
import type { Client, Pool } from "pg";

export type LockMode = "wait" | "nowait" | "advisory";

export interface Claim {
  claim_id: number;
  token: string;
  code: string;
  holder: string;
  usage_count: number;
  max_uses: number;
  remaining: number;
  already_held: boolean;
  claimed_at: Date;
  /** Units of the code this claim holds. */
  units: number;
  /** When the claim ends unless a heartbeat renews it; null without a lease. */
  lease_expires_at: Date | null;
  /** Fencing token: larger than every earlier holder's of the code. */
  fence: number;
}

export interface Release {
  claim_id: number | null;
  code: string;
  holder: string;
  released: boolean;
  usage_count: number;
  remaining: number;
}

export interface CodeStatus {
  code: string;
  found: boolean;
  pool: string | null;
  is_active: boolean | null;
  expires_at: Date | null;
  usage_count: number | null;
  max_uses: number | null;
  remaining: number | null;
  can_claim: boolean;
  /** The error a claim would get now, or null. */
  reason: string | null;
  /** A redemption cap: claims the code admits over its life (null: no cap). */
  max_total_claims: number | null;
  total_claims: number | null;
  remaining_total: number | null;
}

export interface RetryOptions {
  /** Tries in all before LockContended is thrown (default 5). */
  attempts?: number;
  /** The first retry waits up to baseMs, doubling each time (default 50). */
  baseMs?: number;
  /** The longest wait (default 2000). */
  capMs?: number;
}

export interface CapacityOptions {
  lockMode?: LockMode;
  retry?: RetryOptions;
  onRetry?: (attempt: number, err: LockContended) => void;
}

export class Capacity {
  constructor(db: Pool | Client, options?: CapacityOptions);
  claim(code: string, holder: string, options?: { lockMode?: LockMode; units?: number; lease?: string }): Promise<Claim>;
  release(claim: Claim): Promise<Release>;
  release(claimId: number, token?: string): Promise<Release>;
  releaseHolder(code: string, holder: string): Promise<Release>;
  heartbeat(claim: Claim): Promise<Date>;
  heartbeat(claimId: number, token?: string): Promise<Date>;
  assertHeld(claim: Claim): Promise<number>;
  assertHeld(claimId: number, token?: string): Promise<number>;
  check(code: string): Promise<CodeStatus>;
  usage(codes: string[]): Promise<CodeStatus[]>;
  withClaim<T>(
    code: string,
    holder: string,
    work: (claim: Claim) => Promise<T> | T,
    options?: { heartbeatMs?: number; lockMode?: LockMode; units?: number; lease?: string },
  ): Promise<T>;
}

export class CapacityError extends Error {
  /** pgcapacity's JSON DETAIL: the context of the refusal. */
  detail: Record<string, unknown>;
  /** What to do about it. */
  hint: string | undefined;
  /** The name in capacity.error_codes(), e.g. "CODE_FULL". */
  readonly errorName: string;
  readonly sqlstate: string;
}
export class ValidationError extends CapacityError {}
export class CodeNotFound extends CapacityError {}
export class CodeInactive extends CapacityError {}
export class CodeExpired extends CapacityError {}
export class CodeFull extends CapacityError {}
export class HolderLimitExceeded extends CapacityError {}
export class ClaimNotFound extends CapacityError {}
export class LockContended extends CapacityError {}
export class CapacityBelowUsage extends CapacityError {}
export class ServiceUnavailable extends CapacityError {}
export class CodeExhausted extends CapacityError {}
export class PoolFull extends CapacityError {}

export const errors: Record<string, typeof CapacityError>;
export const bySqlstate: Map<string, typeof CapacityError>;
export function translate(err: unknown): unknown;
