-- A change that makes a rare query slower: monthly_workspace_report now takes a single month
-- parameter and filters with date_trunc() on the column, so the (workspace_id, started_at) index
-- only narrows by workspace and the whole year of entries of the workspace is read and filtered.
-- Still a rare query (same calls per minute).
-- name: monthly_workspace_report
-- calls-per-minute: 2
-- budget-ms: 2000
-- params: {"workspace_id": 1, "month": "2026-05-01T00:00:00+00:00"}
SELECT u.id AS user_id, u.full_name, p.id AS project_id, p.name AS project_name,
       c.name AS client_name,
       count(*) AS entries,
       sum(te.duration_s) AS seconds,
       coalesce(sum(te.duration_s) FILTER (WHERE te.billable), 0) AS billable_seconds
FROM time_entries te
JOIN users u ON u.id = te.user_id
LEFT JOIN projects p ON p.id = te.project_id
LEFT JOIN clients c ON c.id = p.client_id
WHERE te.workspace_id = %(workspace_id)s
  AND date_trunc('month', te.started_at, 'UTC') = %(month)s
  AND te.stopped_at IS NOT NULL
GROUP BY u.id, p.id, c.name
ORDER BY u.full_name, seconds DESC;
