// Compiled by `npm run typecheck` (tsc --noEmit) only: the declared types fit real use.
import pg from "pg";
import { Capacity, CapacityError, CodeFull, type Claim, type CodeStatus } from "../index.js";

export async function example(pool: pg.Pool): Promise<number> {
  const cap = new Capacity(pool, { lockMode: "advisory", retry: { attempts: 3 } });
  const claim: Claim = await cap.claim("CLASS-7A", "student-42");
  const status: CodeStatus = await cap.check(claim.code);
  const group: Claim = await cap.claim("CLASS-7A", "group-1", { units: 3, lease: "15 minutes" });
  const ends: Date | null = group.lease_expires_at;
  if (ends !== null && ends < claim.claimed_at) throw new Error("a lease ends after its claim starts");
  try {
    return await cap.withClaim("CLASS-7A", "student-43", async (held) => held.remaining, { heartbeatMs: 30_000 });
  } catch (err) {
    if (err instanceof CodeFull) return Number(err.detail.max_uses) + (status.remaining ?? 0);
    if (err instanceof CapacityError) throw new Error(`${err.errorName}: ${err.hint}`);
    throw err;
  } finally {
    await cap.release(claim);
    await cap.release(group);
  }
}
