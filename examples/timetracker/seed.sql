-- timetracker: deterministic seed data.
--
-- Plain SQL, executed statement by statement on one connection, right after schema.sql and before
-- querywarden gathers statistics (no VACUUM / ANALYZE here).
--
-- Determinism: setseed() fixes the random() sequence, and every random() call is made in a
-- single-relation stage (over generate_series or over one table, in a fixed order, never inside or
-- after a join), so the order in which random values are drawn never depends on a join plan. Later
-- steps only do arithmetic on values already drawn (lookups go through small CTEs or arrays), and
-- the row order of every INSERT is fixed (an explicit ORDER BY, or, for the million finished time
-- entries, generate_series order through a one-row lookup, which needs no sort), so identity
-- values and the physical row order are the same on every run. Timestamps are relative to a fixed
-- "now", 2026-06-01 00:00 UTC, and built with seconds-only intervals (time zone independent).
--
-- Scale: every row count is multiplied by the custom setting querywarden.scale (unset or empty
-- means 1). At scale 1: 2,000 workspaces, 20,000 users, 5,000 clients, 20,000 projects, ~5,000
-- tags, ~1,000,600 time entries, ~280,000 entry tags.
--
-- Shape of the data:
--   * users 1..W are the owners of workspaces 1..W, every other user joins a workspace picked with
--     floor(random()^3 * W), so workspaces 1, 2, 3... are huge and most others have a handful of
--     members. Projects, clients and tags are skewed the same way (every workspace has at least one
--     project, and project 1 and user 1 belong to workspace 1).
--   * finished time entries are spread evenly over 2025-06-01 00:00 .. 2026-05-31 12:00 in id order
--     (the table is physically in time order, like a real append-mostly table). The user of each
--     entry is drawn with a power law (rank = floor(random()^2 * U)), ranks are scattered over user
--     ids by a multiplicative permutation, and rank 0, the heaviest user (~7,000 entries at scale
--     1), is user 1187 at any scale >= 0.06.
--   * the users with mod(id, 32) = 3 (about 3 percent, user 1187 included) have a running timer
--     (stopped_at IS NULL) started during the last 8 hours before "now", nobody else has one.
--   * emails are derived from the user id only (user 1187 is freya.becker1187@example.net at any
--     scale), so a catalog can name a real address.

SELECT setseed(0.42);

-- Bulk-load preparation: maintaining three randomly-inserted B-trees and checking five foreign
-- keys row by row would make loading time_entries and time_entry_tags take minutes, so, like
-- pg_restore, set them aside and re-create them after the data is in. Their definitions are read
-- from the catalog, as schema.sql (or a migration under review) made them, so nothing here repeats
-- or could contradict the schema. Set aside: the foreign keys of the two tables and their
-- non-unique indexes; the primary keys (appended in order) and the small unique partial index of
-- running timers stay.

DO $$
DECLARE
    statement text;
BEGIN
    CREATE TEMPORARY TABLE bulk_load_deferred AS
    SELECT 1 AS restore_order, i.indexrelid::regclass::text AS name,
           format('DROP INDEX %s', i.indexrelid::regclass) AS set_aside,
           pg_get_indexdef(i.indexrelid) AS restore
    FROM pg_index i
    WHERE i.indrelid IN ('time_entries'::regclass, 'time_entry_tags'::regclass) AND NOT i.indisunique
    UNION ALL
    SELECT 2, c.conname,
           format('ALTER TABLE %s DROP CONSTRAINT %I', c.conrelid::regclass, c.conname),
           format('ALTER TABLE %s ADD CONSTRAINT %I %s', c.conrelid::regclass, c.conname, pg_get_constraintdef(c.oid))
    FROM pg_constraint c
    WHERE c.conrelid IN ('time_entries'::regclass, 'time_entry_tags'::regclass) AND c.contype = 'f';

    FOR statement IN SELECT set_aside FROM bulk_load_deferred ORDER BY restore_order DESC, name LOOP
        EXECUTE statement;
    END LOOP;
END
$$;

-- Workspaces -----------------------------------------------------------------------------------

INSERT INTO workspaces (name, plan, created_at)
WITH s AS (
    SELECT coalesce(nullif(current_setting('querywarden.scale', true), '')::numeric, 1) AS k
), w AS MATERIALIZED (
    SELECT g, random() AS r_adj, random() AS r_noun, random() AS r_plan, random() AS r_age
    FROM s, generate_series(1, greatest(1, round(2000 * s.k))::int) AS g
)
SELECT (ARRAY['Blue', 'North', 'Bright', 'Iron', 'Silver', 'Green', 'Rapid', 'Quiet', 'Bold',
              'Clear', 'Swift', 'Prime', 'Red', 'Stone', 'Cedar', 'Maple', 'Harbor', 'Summit',
              'Atlas', 'Nova'])[1 + floor(r_adj * 20)::int]
       || ' '
       || (ARRAY['Labs', 'Works', 'Studio', 'Systems', 'Partners', 'Digital', 'Consulting', 'Group',
                 'Media', 'Logistics', 'Health', 'Analytics', 'Design', 'Builders', 'Legal',
                 'Ventures'])[1 + floor(r_noun * 16)::int],
       CASE WHEN g <= 20 THEN 'business' WHEN r_plan < 0.3 THEN 'team' ELSE 'free' END,
       timestamptz '2026-06-01 00:00+00' - make_interval(secs => floor(30 * 86400 + r_age * 1500 * 86400))
FROM w
ORDER BY g;

-- Users ----------------------------------------------------------------------------------------

INSERT INTO users (workspace_id, email, full_name, timezone, deactivated, created_at)
WITH s AS (
    SELECT coalesce(nullif(current_setting('querywarden.scale', true), '')::numeric, 1) AS k
), n AS (
    SELECT greatest(1, round(2000 * s.k))::int AS workspaces, greatest(1, round(20000 * s.k))::int AS users
    FROM s
), u AS MATERIALIZED (
    SELECT g, n.workspaces,
           random() AS r_ws, random() AS r_tz, random() AS r_off, random() AS r_age
    FROM n, generate_series(1, n.users) AS g
), named AS (
    SELECT u.*,
           (ARRAY['Maria', 'James', 'Aiko', 'Lena', 'Omar', 'Sofia', 'Noah', 'Priya', 'Lucas',
                  'Emma', 'Mateo', 'Chloe', 'Ivan', 'Amara', 'Leo', 'Hana', 'Diego', 'Nina',
                  'Samuel', 'Zoe', 'Kwame', 'Elif', 'Jonas', 'Mei', 'Rafael', 'Ines', 'Tariq',
                  'Freya', 'Arjun', 'Clara', 'Felix', 'Yara', 'Hugo', 'Maya', 'Oskar', 'Lucia',
                  'Kenji', 'Alma', 'Victor', 'Rosa'])[1 + mod(g, 40)] AS first_name,
           (ARRAY['Garcia', 'Smith', 'Tanaka', 'Muller', 'Haddad', 'Rossi', 'Johansson', 'Patel',
                  'Silva', 'Martin', 'Lopez', 'Dubois', 'Petrov', 'Okafor', 'Novak', 'Kim',
                  'Fernandez', 'Jensen', 'Cohen', 'Nguyen', 'Mensah', 'Yilmaz', 'Weber', 'Chen',
                  'Costa', 'Moreau', 'Rahman', 'Larsen', 'Sharma', 'Becker', 'Wagner', 'Ali',
                  'Rivera', 'Schmidt', 'Berg', 'Romero', 'Sato', 'Nilsson', 'Ortiz', 'Kowalski',
                  'Hughes', 'Ivanova', 'Park', 'Santos', 'Fischer', 'Lindqvist', 'Moreno', 'Adeyemi',
                  'Bauer', 'Vargas'])[1 + mod(g / 40, 50)] AS last_name
    FROM u
)
SELECT CASE WHEN g <= workspaces THEN g ELSE 1 + floor(pow(r_ws, 3) * workspaces)::int END,
       -- derived from the id only, so a catalog can name a real address at any scale
       lower(first_name) || '.' || lower(last_name) || g || '@'
       || (ARRAY['example.com', 'example.org', 'example.net', 'mail.example', 'corp.example'])[1 + mod(g, 5)],
       first_name || ' ' || last_name,
       (ARRAY['UTC', 'Europe/Berlin', 'America/New_York', 'Asia/Tokyo', 'Europe/London',
              'America/Los_Angeles', 'Asia/Kolkata', 'Australia/Sydney'])[1 + floor(r_tz * 8)::int],
       g > workspaces AND r_off < 0.08,
       timestamptz '2026-06-01 00:00+00' - make_interval(secs => floor(7 * 86400 + r_age * 1400 * 86400))
FROM named
ORDER BY g;

-- Clients (ids contiguous per workspace) -------------------------------------------------------

INSERT INTO clients (workspace_id, name, created_at)
WITH s AS (
    SELECT coalesce(nullif(current_setting('querywarden.scale', true), '')::numeric, 1) AS k
), c AS MATERIALIZED (
    SELECT g,
           1 + floor(pow(random(), 2) * greatest(1, round(2000 * s.k)))::int AS workspace_id,
           random() AS r_adj, random() AS r_noun, random() AS r_suffix, random() AS r_age
    FROM s, generate_series(1, greatest(1, round(5000 * s.k))::int) AS g
)
SELECT workspace_id,
       (ARRAY['Acme', 'Globex', 'Initech', 'Umbrella', 'Stark', 'Wayne', 'Hooli', 'Vandelay',
              'Soylent', 'Tyrell', 'Cyberdyne', 'Wonka', 'Gringotts', 'Monarch', 'Oceanic',
              'Pied Piper', 'Aperture', 'Massive Dynamic', 'Dunder', 'Prestige'])[1 + floor(r_adj * 20)::int]
       || ' '
       || (ARRAY['Foods', 'Energy', 'Bank', 'Retail', 'Airlines', 'Pharma', 'Motors', 'Hotels',
                 'Insurance', 'Games'])[1 + floor(r_noun * 10)::int]
       || ' '
       || (ARRAY['Inc', 'LLC', 'GmbH', 'Ltd', 'SA', 'BV'])[1 + floor(r_suffix * 6)::int],
       timestamptz '2026-06-01 00:00+00' - make_interval(secs => floor(r_age * 1400 * 86400))
FROM c
ORDER BY workspace_id, g;

-- Projects (ids contiguous per workspace, every workspace has at least one) --------------------

INSERT INTO projects (workspace_id, client_id, name, color, billable, archived, created_at)
WITH s AS (
    SELECT coalesce(nullif(current_setting('querywarden.scale', true), '')::numeric, 1) AS k
), n AS (
    SELECT greatest(1, round(2000 * s.k))::int AS workspaces, greatest(1, round(20000 * s.k))::int AS projects
    FROM s
), p AS MATERIALIZED (
    SELECT g,
           CASE WHEN g <= n.workspaces THEN g ELSE 1 + floor(pow(random(), 3) * n.workspaces)::int END AS workspace_id,
           random() AS r_client, random() AS r_name, random() AS r_year, random() AS r_color,
           random() AS r_billable, random() AS r_archived, random() AS r_age
    FROM n, generate_series(1, n.projects) AS g
), client_ranges AS (
    SELECT workspace_id, min(id) AS lo, count(*)::int AS n FROM clients GROUP BY workspace_id
)
SELECT p.workspace_id,
       CASE WHEN p.r_client < 0.3 OR cr.n IS NULL THEN NULL
            ELSE cr.lo + floor((p.r_client - 0.3) / 0.7 * cr.n)::int END,
       (ARRAY['Website redesign', 'Mobile app', 'Annual audit', 'Onboarding', 'Data migration',
              'Brand refresh', 'API integration', 'Support retainer', 'Marketing site',
              'Internal tools', 'Payroll', 'Infrastructure', 'Research', 'Content calendar',
              'Security review', 'Analytics dashboard'])[1 + floor(p.r_name * 16)::int]
       || ' ' || (2020 + floor(p.r_year * 7)::int),
       (ARRAY['#4a90d9', '#d94a4a', '#4ad97a', '#d9b44a', '#9b4ad9', '#4ad9d0'])[1 + floor(p.r_color * 6)::int],
       p.r_billable < 0.75,
       p.g > (SELECT workspaces FROM n) AND p.r_archived < 0.25,
       timestamptz '2026-06-01 00:00+00' - make_interval(secs => floor(p.r_age * 1400 * 86400))
FROM p
LEFT JOIN client_ranges cr ON cr.workspace_id = p.workspace_id
ORDER BY p.workspace_id, p.g;

-- Tags (ids contiguous per workspace, names unique per workspace) ------------------------------

INSERT INTO tags (workspace_id, name)
WITH s AS (
    SELECT coalesce(nullif(current_setting('querywarden.scale', true), '')::numeric, 1) AS k
), t AS MATERIALIZED (
    SELECT g,
           1 + floor(pow(random(), 2) * greatest(1, round(2000 * s.k)))::int AS workspace_id,
           random() AS r_word, random() AS r_two, random() AS r_second
    FROM s, generate_series(1, greatest(1, round(5000 * s.k))::int) AS g
), words AS (
    SELECT ARRAY['meeting', 'design', 'review', 'bug', 'call', 'email', 'planning', 'research',
                 'admin', 'travel', 'support', 'sales', 'training', 'testing', 'deploy', 'writing',
                 'hiring', 'ops', 'finance', 'legal', 'client', 'internal', 'urgent', 'overtime',
                 'billing', 'qa', 'docs', 'strategy', 'sprint', 'workshop'] AS w
)
SELECT workspace_id, name
FROM (
    -- drop duplicate names inside a workspace (keeping the first draw) before inserting, so that
    -- tag ids have no gaps and stay contiguous per workspace
    SELECT DISTINCT ON (t.workspace_id, name) t.g, t.workspace_id, name
    FROM t, words,
         LATERAL (SELECT words.w[1 + floor(t.r_word * 30)::int]
                         || CASE WHEN t.r_two < 0.2 THEN ''
                              ELSE '-' || words.w[1 + mod(floor(t.r_word * 30)::int + 1 + floor(t.r_second * 29)::int, 30)] END
                  AS name) AS nm
    ORDER BY t.workspace_id, name, t.g
) AS d
ORDER BY workspace_id, g;

-- Time entries (finished) ----------------------------------------------------------------------
--
-- One pass over generate_series, in g order (so ids follow started_at). The per-user lookups
-- (workspace, first project of that workspace, number of projects in it) come from arrays indexed
-- by user id, built once in a one-row CTE: no join that could reorder or re-run the random draws,
-- and no sort of a million rows.

INSERT INTO time_entries (workspace_id, user_id, project_id, description, started_at, stopped_at, duration_s, billable)
WITH s AS (
    SELECT coalesce(nullif(current_setting('querywarden.scale', true), '')::numeric, 1) AS k
), n AS (
    SELECT greatest(1, round(20000 * s.k))::int AS users, greatest(1, round(1000000 * s.k))::int AS entries
    FROM s
), project_ranges AS (
    SELECT workspace_id, min(id) AS lo, count(*)::int AS n FROM projects GROUP BY workspace_id
), lookup AS MATERIALIZED (
    SELECT array_agg(u.workspace_id ORDER BY u.id) AS ws,
           array_agg(pr.lo ORDER BY u.id) AS project_lo,
           array_agg(pr.n ORDER BY u.id) AS project_n
    FROM users u JOIN project_ranges pr ON pr.workspace_id = u.workspace_id
)
SELECT lookup.ws[e.user_id],
       e.user_id,
       -- each user works on (at most) 4 neighbouring projects of their workspace
       CASE WHEN e.r_noproject < 0.12 THEN NULL
            ELSE lookup.project_lo[e.user_id] + mod(e.user_id * 7 + floor(e.r_project * 4)::int, lookup.project_n[e.user_id])
       END,
       CASE WHEN e.r_desc < 0.15 THEN ''
            ELSE (ARRAY['Code review', 'Standup', 'Client call', 'Sprint planning', 'Bug fixing',
                        'Writing specs', 'Email triage', 'Design review', 'Deploy to production',
                        'Customer support', 'Research', 'Interviewing', 'Documentation',
                        'Refactoring', 'Testing', 'Weekly sync', 'One-on-one', 'Invoice prep',
                        'Workshop prep', 'Onboarding'])[1 + floor((e.r_desc - 0.15) / 0.85 * 20)::int]
                 || CASE WHEN e.r_ticket < 0.4 THEN ' TT-' || (1000 + floor(e.r_ticket * 20000)::int) ELSE '' END
       END,
       e.started_at,
       e.started_at + e.duration_s * interval '1 second',
       e.duration_s,
       e.r_noproject >= 0.12 AND e.r_billable < 0.7
FROM lookup,
     (SELECT g,
             -- power-law rank, scattered over user ids, rank 0 is user 1187 whenever users > 1186
             1 + mod(floor(pow(random(), 2) * gs.users)::bigint * 104729 + 1186, gs.users)::int AS user_id,
             -- evenly spread over 2025-06-01 00:00 .. 2026-05-31 12:00 UTC (31,492,800 s), in id order,
             -- so every finished entry stops (at most 4 h later) before any running timer starts
             timestamptz '2025-06-01 00:00+00'
                 + floor((g - 1 + random()) / gs.entries * 31492800) * interval '1 second' AS started_at,
             120 + floor(pow(random(), 2) * 14280)::int AS duration_s,
             random() AS r_project, random() AS r_noproject, random() AS r_billable,
             random() AS r_desc, random() AS r_ticket
      -- (generate_series in the select list streams, in FROM it would be materialized first)
      FROM (SELECT n.users, n.entries, generate_series(1, n.entries) AS g FROM n) AS gs
     ) AS e;

-- Running timers: users with mod(id, 32) = 3, started in the last 8 hours before "now" -----------

INSERT INTO time_entries (workspace_id, user_id, project_id, description, started_at, stopped_at, duration_s, billable)
WITH r AS MATERIALIZED (
    SELECT id AS user_id, workspace_id,
           timestamptz '2026-05-31 16:00+00' + floor(random() * 28800) * interval '1 second' AS started_at,
           random() AS r_project, random() AS r_desc
    FROM users
    WHERE mod(id, 32) = 3
    ORDER BY id
), project_ranges AS (
    SELECT workspace_id, min(id) AS lo, count(*)::int AS n FROM projects GROUP BY workspace_id
)
SELECT r.workspace_id,
       r.user_id,
       pr.lo + mod(r.user_id * 7 + floor(r.r_project * 4)::int, pr.n),
       (ARRAY['Code review', 'Client call', 'Bug fixing', 'Writing specs', 'Design review',
              'Customer support', 'Refactoring', 'Testing'])[1 + floor(r.r_desc * 8)::int],
       r.started_at,
       NULL,
       NULL,
       true
FROM r
JOIN project_ranges pr ON pr.workspace_id = r.workspace_id
ORDER BY r.started_at, r.user_id;

-- Entry tags: 25 percent of entries get a tag of their workspace, 7 percent a second one ---------
--
-- One pass over time_entries in id order, tag ranges looked up in arrays indexed by workspace id.

INSERT INTO time_entry_tags (time_entry_id, tag_id)
WITH tag_ranges AS (
    SELECT workspace_id, min(id) AS lo, count(*)::int AS n FROM tags GROUP BY workspace_id
), lookup AS MATERIALIZED (
    SELECT array_agg(tr.lo ORDER BY w.id) AS tag_lo, array_agg(coalesce(tr.n, 0) ORDER BY w.id) AS tag_n
    FROM workspaces w LEFT JOIN tag_ranges tr ON tr.workspace_id = w.id
), picked AS MATERIALIZED (
    SELECT e.id, first_off + lo AS first_tag,
           CASE WHEN e.r_has < 0.07 AND n > 1
                THEN lo + mod(first_off + 1 + floor(e.r_second * (n - 1))::int, n)
           END AS second_tag
    FROM lookup,
         (SELECT id, workspace_id, random() AS r_has, random() AS r_first, random() AS r_second
          FROM time_entries
          ORDER BY id
         ) AS e,
         LATERAL (SELECT lookup.tag_lo[e.workspace_id] AS lo, lookup.tag_n[e.workspace_id] AS n) AS r,
         LATERAL (SELECT floor(e.r_first * r.n)::int AS first_off) AS f
    WHERE e.r_has < 0.25 AND r.n > 0
)
SELECT id, first_tag FROM picked
UNION ALL
SELECT id, second_tag FROM picked WHERE second_tag IS NOT NULL
ORDER BY 1, 2;

-- Bulk-load completion: the indexes, then the foreign keys, exactly as they were ----------------

DO $$
DECLARE
    statement text;
BEGIN
    FOR statement IN SELECT restore FROM bulk_load_deferred ORDER BY restore_order, name LOOP
        EXECUTE statement;
    END LOOP;
    DROP TABLE bulk_load_deferred;
END
$$;

