-- Base schema item of the same-run A/B benchmark (base_ab.py), loaded after schema.sql on the base
-- AND on the head: database objects its hot queries read through, so that a head migration can
-- change what they cost without a character of the catalog changing.

-- The timeline's entry label, made in the database. PL/pgSQL, so the planner never inlines it: its
-- body is invisible in the catalog's SQL and in the plan, which only calls it once per row.
CREATE FUNCTION entry_label(description text, started_at timestamptz)
RETURNS text
LANGUAGE plpgsql STABLE PARALLEL SAFE
AS $$
BEGIN
    RETURN left(description, 60) || ' · ' || to_char(started_at AT TIME ZONE 'UTC', 'Dy HH24:MI');
END
$$;

-- The entry feed of the mobile app: entries with their project, as one view.
CREATE VIEW entry_feed AS
SELECT te.id,
       te.user_id,
       te.started_at,
       te.stopped_at,
       te.billable,
       te.description AS title,
       p.name AS project_name,
       p.color AS project_color
FROM time_entries te
LEFT JOIN projects p ON p.id = te.project_id;
