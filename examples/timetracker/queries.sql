-- timetracker: the catalog of hot queries guarded by querywarden.
--
-- A plain aiosql file: an app could load it with `aiosql.from_path("queries.sql", "psycopg")`
-- (parameter lists in the name lines, as aiosql's default mandatory_parameters wants; :name
-- parameters). querywarden reads its own metadata from the docstring lines under each name, which
-- aiosql takes as documentation:
--   calls-per-minute  how often production runs the statement (weights its cost)
--   params            JSON object with a value for each :name parameter
--   budget-ms         optional latency budget
-- Parameter values hit real rows of seed.sql at any scale >= 0.06: user 1187 is the heaviest
-- user and has a running timer, user 1 (workspace 1, project 1) has none, workspace 1 is the
-- biggest workspace and workspace 2 the second biggest. Timestamps are fixed (the "now" of the seed is
-- 2026-06-01 00:00 UTC), never now().
--
-- The two writes (start_timer, stop_timer) come last: even rolled back, they leave dead tuples
-- and index entries behind, which later reads of the same rows would step over.

-- name: running_timer(user_id)^
-- calls-per-minute: 20000
-- params: {"user_id": 1187}
SELECT id, project_id, description, started_at
FROM time_entries
WHERE user_id = :user_id AND stopped_at IS NULL;

-- name: recent_entries(user_id)
-- calls-per-minute: 6000
-- params: {"user_id": 1187}
SELECT te.id, te.description, te.started_at, te.stopped_at, te.duration_s, te.billable,
       te.project_id, p.name AS project_name, p.color AS project_color
FROM (
    -- the page first, then the projects of its 50 rows: joining before the LIMIT let the planner
    -- weigh a Memoize cache over every entry of the user, a choice that flipped with table size
    SELECT id, description, started_at, stopped_at, duration_s, billable, project_id
    FROM time_entries
    WHERE user_id = :user_id
    ORDER BY started_at DESC
    LIMIT 50
) AS te
LEFT JOIN projects p ON p.id = te.project_id
ORDER BY te.started_at DESC;

-- name: active_projects(workspace_id)
-- calls-per-minute: 2500
-- params: {"workspace_id": 2}
SELECT p.id, p.name, p.color, p.billable, c.name AS client_name
FROM projects p
LEFT JOIN clients c ON c.id = p.client_id AND c.workspace_id = :workspace_id
WHERE p.workspace_id = :workspace_id AND NOT p.archived
ORDER BY p.name;

-- name: week_totals_by_project(user_id,week_start,week_end)
-- calls-per-minute: 1500
-- params: {"user_id": 1187, "week_start": "2026-05-25T00:00:00+00:00", "week_end": "2026-06-01T00:00:00+00:00"}
SELECT te.project_id,
       (SELECT p.name FROM projects p WHERE p.id = te.project_id) AS project_name,
       count(*) AS entries,
       sum(te.duration_s) AS seconds,
       coalesce(sum(te.duration_s) FILTER (WHERE te.billable), 0) AS billable_seconds
FROM time_entries te
WHERE te.user_id = :user_id
  AND te.started_at >= :week_start
  AND te.started_at < :week_end
  AND te.stopped_at IS NOT NULL
GROUP BY te.project_id
ORDER BY seconds DESC;

-- name: tag_autocomplete(workspace_id,prefix)
-- calls-per-minute: 1200
-- params: {"workspace_id": 1, "prefix": "tr%"}
SELECT id, name
FROM tags
WHERE workspace_id = :workspace_id AND name LIKE :prefix
ORDER BY name
LIMIT 10;

-- name: user_by_email(email)^
-- calls-per-minute: 300
-- params: {"email": "freya.becker1187@example.net"}
SELECT id, workspace_id, full_name, timezone, deactivated
FROM users
WHERE email = :email;

-- name: monthly_workspace_report(workspace_id,month_start,month_end)
-- calls-per-minute: 2
-- budget-ms: 2000
-- params: {"workspace_id": 1, "month_start": "2026-05-01T00:00:00+00:00", "month_end": "2026-06-01T00:00:00+00:00"}
SELECT u.id AS user_id, u.full_name, p.id AS project_id, p.name AS project_name,
       c.name AS client_name,
       count(*) AS entries,
       sum(te.duration_s) AS seconds,
       coalesce(sum(te.duration_s) FILTER (WHERE te.billable), 0) AS billable_seconds
FROM time_entries te
JOIN users u ON u.id = te.user_id
LEFT JOIN projects p ON p.id = te.project_id
LEFT JOIN clients c ON c.id = p.client_id
WHERE te.workspace_id = :workspace_id
  AND te.started_at >= :month_start
  AND te.started_at < :month_end
  AND te.stopped_at IS NOT NULL
GROUP BY u.id, p.id, c.name
ORDER BY u.full_name, seconds DESC;

-- name: start_timer(workspace_id,user_id,project_id,description,started_at,billable)<!
-- calls-per-minute: 400
-- params: {"workspace_id": 1, "user_id": 1, "project_id": 1, "description": "Sprint planning", "started_at": "2026-06-01T00:00:00+00:00", "billable": true}
INSERT INTO time_entries (workspace_id, user_id, project_id, description, started_at, billable)
VALUES (:workspace_id, :user_id, :project_id, :description, :started_at, :billable)
RETURNING id;

-- name: stop_timer(user_id,stopped_at)<!
-- calls-per-minute: 400
-- params: {"user_id": 1187, "stopped_at": "2026-06-01T00:00:00+00:00"}
UPDATE time_entries
SET stopped_at = :stopped_at,
    duration_s = floor(extract(epoch FROM :stopped_at - started_at))::int
WHERE user_id = :user_id AND stopped_at IS NULL
RETURNING id, duration_s;
