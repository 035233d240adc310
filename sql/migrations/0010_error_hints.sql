-- 0010: capacity.error_codes() gains a `hint` column: what to do about each error, for
-- callers that show an error without a HINT of its own (the HTTP layer's own errors).
-- A function's result columns can only change by dropping it; the function file that
-- follows creates the new one, and the installer re-grants it to the application roles.
DROP FUNCTION IF EXISTS capacity.error_codes();
