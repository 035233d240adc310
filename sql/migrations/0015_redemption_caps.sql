-- 0015: redemption caps. A code may limit how many claims it admits over its whole life,
-- released or not (promo and invite codes), beside max_uses, which limits the units in use
-- at once. total_claims counts the claims admitted while the cap is set (set from the
-- claims recorded when the cap is set), on the code row: a capped code is never slotted.
ALTER TABLE capacity.codes
    ADD COLUMN max_total_claims integer CONSTRAINT codes_max_total_claims_nonnegative CHECK (max_total_claims >= 0),
    ADD COLUMN total_claims integer,
    ADD CONSTRAINT codes_total_claims_counted CHECK ((max_total_claims IS NULL) = (total_claims IS NULL)),
    ADD CONSTRAINT codes_total_claims_within_cap CHECK (total_claims <= max_total_claims),
    ADD CONSTRAINT codes_capped_codes_are_plain CHECK (max_total_claims IS NULL OR slots = 0);
COMMENT ON COLUMN capacity.codes.max_total_claims IS
    'Claims this code admits over its whole life, released or not (null: no such cap).';
COMMENT ON COLUMN capacity.codes.total_claims IS
    'Claims admitted under max_total_claims (null when there is no cap).';
ALTER TYPE capacity._code_spec ADD ATTRIBUTE max_total_claims integer, ADD ATTRIBUTE has_max_total boolean;
ALTER TYPE capacity.code_status
    ADD ATTRIBUTE max_total_claims integer, ADD ATTRIBUTE total_claims integer, ADD ATTRIBUTE remaining_total integer;
DROP FUNCTION IF EXISTS capacity._blocker_of(boolean, timestamptz, integer, integer);
