-- 0011: capacity.revoke_code() also returns `claims_ended`, the name of what `revoked`
-- counted all along (the claims it ended: 0 for a code revoked with none). The function
-- is dropped so that its file can create it with the longer result; the installer
-- re-grants it to the application roles.
DROP FUNCTION IF EXISTS capacity.revoke_code(text);
