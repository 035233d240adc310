-- 0016: fencing. claim()'s result carries `fence`, the claim's fencing token for resources
-- outside PostgreSQL (capacity.assert_held() fences writes inside it).
ALTER TYPE capacity.claim_result ADD ATTRIBUTE fence bigint;
