-- 0018: the event stream. Every event records the transaction that wrote it, so that
-- capacity.events_after() can deliver events in an order no later commit slips behind.
-- Events written before this step read 0: they are all committed, and come first.
ALTER TABLE capacity.events ADD COLUMN xact_id xid8 NOT NULL DEFAULT '0';
ALTER TABLE capacity.events ALTER COLUMN xact_id SET DEFAULT pg_catalog.pg_current_xact_id();
COMMENT ON COLUMN capacity.events.xact_id IS
    'The top-level transaction that wrote the event: the stream''s delivery order (events_after).';
CREATE INDEX events_in_delivery_order ON capacity.events (xact_id, event_id);
