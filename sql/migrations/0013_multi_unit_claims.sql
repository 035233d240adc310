-- 0013: a claim may take several units of a code at once (a group booking of 4 seats).
-- claims.units says how many; a code's usage is the sum of its active claims' units.
-- Events carry the units they took or gave back, so activity can count units in use.
-- claim() gains a `units` argument (the 3-argument form is dropped so that its file can
-- create the longer one; the installer re-grants it), and its result and claim_info a
-- `units` column. Holder limits still count claims, not units.
ALTER TABLE capacity.claims
    ADD COLUMN units integer NOT NULL DEFAULT 1 CONSTRAINT claims_units_positive CHECK (units >= 1);
COMMENT ON COLUMN capacity.claims.units IS 'Units of the code this claim holds (at least 1).';
ALTER TABLE capacity.events ADD COLUMN units integer NOT NULL DEFAULT 1;
COMMENT ON COLUMN capacity.events.units IS
    'Units the event took (claimed) or gave back (released, expired, revoked).';
ALTER TYPE capacity.claim_result ADD ATTRIBUTE units integer;
ALTER TYPE capacity.claim_info ADD ATTRIBUTE units integer;
DROP FUNCTION IF EXISTS capacity.claim(text, text, text);
DROP FUNCTION IF EXISTS capacity._raise_if_blocked(capacity.codes);
DROP FUNCTION IF EXISTS capacity._take_slot(capacity.codes, text);
DROP FUNCTION IF EXISTS capacity._claim_from_slot(capacity.codes, text, text);
