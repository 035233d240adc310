-- 0014: a claim may carry a lease, a time after which it no longer counts unless a
-- heartbeat renews it (a crashed holder never blocks a code longer than its lease). A code
-- may give its claims a default lease. Claims past their lease are found by a partial
-- index of the active leased claims (claims without a lease add nothing to it, and their
-- heartbeats stay HOT updates).
ALTER TABLE capacity.codes
    ADD COLUMN lease interval CONSTRAINT codes_lease_positive CHECK (lease >= interval '1 second');
COMMENT ON COLUMN capacity.codes.lease IS
    'Default lease of this code''s claims (null: claims end by release or idle expiry only).';
ALTER TABLE capacity.claims
    ADD COLUMN lease interval CONSTRAINT claims_lease_positive CHECK (lease >= interval '1 second'),
    ADD COLUMN lease_expires_at timestamptz,
    ADD CONSTRAINT claims_lease_has_expiry CHECK ((lease IS NULL) = (lease_expires_at IS NULL));
COMMENT ON COLUMN capacity.claims.lease IS 'Length of the claim''s lease; each heartbeat renews it.';
COMMENT ON COLUMN capacity.claims.lease_expires_at IS
    'When the claim stops counting unless renewed (null: no lease).';
CREATE INDEX claims_lease_idx ON capacity.claims (code_id, lease_expires_at)
    WHERE released_at IS NULL AND lease_expires_at IS NOT NULL;
ALTER TYPE capacity._code_spec ADD ATTRIBUTE lease interval, ADD ATTRIBUTE has_lease boolean;
ALTER TYPE capacity.claim_result ADD ATTRIBUTE lease_expires_at timestamptz;
ALTER TYPE capacity.claim_info ADD ATTRIBUTE lease_expires_at timestamptz;
DROP FUNCTION IF EXISTS capacity.claim(text, text, text, integer);
DROP FUNCTION IF EXISTS capacity._claim_from_slot(capacity.codes, text, text, integer);
DROP FUNCTION IF EXISTS capacity._claim_across_slots(capacity.codes, text, text, integer);
