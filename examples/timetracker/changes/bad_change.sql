-- A change that takes the service down: running_timer now returns the latest entry of the user (the
-- client checks stopped_at itself) and compares the user id as text, because the id now arrives
-- as a string from the session token. Without "stopped_at IS NULL" the partial index of running
-- timers no longer applies, and user_id::text defeats the (user_id, started_at) index: every call
-- is a Seq Scan of time_entries plus a top-N sort.
-- name: running_timer
-- calls-per-minute: 20000
-- params: {"user_id": "1187"}
SELECT id, project_id, description, started_at, stopped_at
FROM time_entries
WHERE user_id::text = %(user_id)s
ORDER BY started_at DESC
LIMIT 1;
