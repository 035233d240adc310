-- 0007: heartbeats become HOT updates; a claim inserts one index entry less.
--
-- claims_active_by_last_seen indexed last_seen_at, so every heartbeat was a non-HOT update:
-- a new row version with an entry in each of the three claims indexes (413 bytes of WAL
-- per heartbeat, and index bloat that only VACUUM removes). Without it, and with room
-- left in each page for the new version (fillfactor 90), a heartbeat changes one heap
-- page (195 bytes of WAL, docs/benchmarks.md). expire_idle_claims now finds idle claims
-- by scanning the active claims once through claims_one_active_per_holder (a partial
-- index holding only active claims), before it takes any lock.
--
-- (Migration 0006's note says claims wait on the WAL flush's size; measurements made
-- after it showed the CPU is what limits claims on the bench machine: docs/benchmarks.md.)

DROP INDEX capacity.claims_active_by_last_seen;
ALTER TABLE capacity.claims SET (fillfactor = 90);
