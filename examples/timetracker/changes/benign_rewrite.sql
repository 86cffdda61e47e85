-- A harmless change: recent_entries reformatted, aliases renamed, join condition operands swapped
-- and a comment added. Same plan, same buffers.
-- name: recent_entries
-- calls-per-minute: 6000
-- params: {"user_id": 1187}
select
    entry.id,
    entry.description,
    entry.started_at,
    entry.stopped_at,
    entry.duration_s,
    entry.billable,
    entry.project_id,
    project.name  as project_name,  -- shown next to each entry in the timeline
    project.color as project_color
from (
        select id, description, started_at, stopped_at, duration_s, billable, project_id
        from time_entries
        where user_id = %(user_id)s
        order by started_at desc
        limit 50
    ) as entry
    left outer join projects as project
        on entry.project_id = project.id
order by entry.started_at desc;
