-- expire_idle_claims() on every shard (batch_size each); the counts added up, more_pending
-- if any shard has more.
CREATE OR REPLACE FUNCTION capacity.expire_idle_claims(idle interval DEFAULT '30 minutes', batch_size integer DEFAULT 1000)
RETURNS capacity.expiry_result
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    e_state text; e_message text; e_detail text; e_hint text;
    result capacity.expiry_result;
BEGIN
    SELECT coalesce(sum(x.expired), 0), coalesce(sum(x.codes_touched), 0),
           coalesce(sum(x.holders_touched), 0), coalesce(bool_or(x.more_pending), false)
      INTO result FROM capacity_cluster.expire_idle_claims(idle, batch_size) AS x;
    RETURN result;
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS e_state = RETURNED_SQLSTATE, e_message = MESSAGE_TEXT,
                            e_detail = PG_EXCEPTION_DETAIL, e_hint = PG_EXCEPTION_HINT;
    PERFORM capacity_cluster.reraise(e_state, e_message, e_detail, e_hint);
    RETURN NULL;
END
$$;
