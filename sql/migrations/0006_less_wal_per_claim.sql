-- 0006: a claim and its release write less WAL.
--
-- Why (measured with pg_walinspect and pg_stat_wal, docs/benchmarks.md): with synchronous
-- commit, concurrent claims spend their time waiting for the WAL flush, and on this
-- kind of disk a flush takes longer the more WAL it carries. A spread claim+release
-- wrote 2 180 bytes of WAL (a raw UPDATE pair: 480), ten B-tree insertions among them.
--
-- * Holder counter rows exist only for holders with a limit. Unlimited holders (most)
--   no longer insert and update a counter row on every claim and release; their active
--   claims are counted from capacity.claims where they are shown (holder_usage).
--   Claims and releases take a shared transaction-scoped advisory lock on (pool, holder)
--   before they look for the counter; set_holder_limit takes it exclusively, so it
--   counts a holder's claims when none is in flight (capacity._holder_lock_key).
-- * claims_one_active_per_holder leads with holder, so it also finds a holder's active
--   claims; the separate (pool, holder) index goes.
-- * The BRIN index on claims.released_at goes: a release writes its new row version
--   into whatever page has room, so the index was updated by most releases and its
--   ranges soon covered all time. Retention walks ended claims in claim_id order.
-- * events loses its (code_id, occurred_at) B-tree (nothing in pgcapacity reads it; two
--   insertions per claim+release). Add it back if you query one code's history often.

DELETE FROM capacity.holders WHERE max_claims IS NULL;
ALTER TABLE capacity.holders ALTER COLUMN max_claims SET NOT NULL;
COMMENT ON TABLE capacity.holders IS
    'Holders with a claim limit in a pool, and their active claims (holders without a row are unlimited).';

CREATE UNIQUE INDEX claims_one_active_per_holder_0006
    ON capacity.claims (holder, code_id) WHERE released_at IS NULL;
DROP INDEX capacity.claims_one_active_per_holder;
ALTER INDEX capacity.claims_one_active_per_holder_0006 RENAME TO claims_one_active_per_holder;
DROP INDEX capacity.claims_active_by_holder;
DROP INDEX capacity.claims_ended_at;
DROP INDEX capacity.events_code_time;
