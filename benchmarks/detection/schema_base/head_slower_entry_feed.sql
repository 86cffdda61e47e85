-- Head migration (CPU-only): the entry_feed view's title is now cleaned up and carries the weekday,
-- computed per row in the view. The catalog reads `title` from the view exactly as before: same SQL
-- text, same plan, same blocks; more CPU for each of the 50 rows of a page.
CREATE OR REPLACE VIEW entry_feed AS
SELECT te.id,
       te.user_id,
       te.started_at,
       te.stopped_at,
       te.billable,
       regexp_replace(initcap(btrim(te.description)), '\s+', ' ', 'g')
           || ' · ' || to_char(te.started_at AT TIME ZONE 'Europe/Berlin', 'FMDay HH24:MI') AS title,
       p.name AS project_name,
       p.color AS project_color
FROM time_entries te
LEFT JOIN projects p ON p.id = te.project_id;
