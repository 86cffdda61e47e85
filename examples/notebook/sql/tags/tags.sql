-- notebook's tag queries: in sql/tags/, so aiosql names them tags.<name> (queries.tags.notes_tagged)
-- and querywarden guards them as tags.<name> too.

-- name: notes_tagged(tenant_id,tag)
-- A tenant's latest live notes with one tag.
-- calls-per-minute: 1500
-- params[typical]: {"tenant_id": 7, "tag": "work"}
-- params[big]: {"tenant_id": 1, "tag": "home"}
SELECT n.id, n.title, n.updated_at
FROM tags t
JOIN note_tags nt ON nt.tag_id = t.id
JOIN notes n ON n.id = nt.note_id
WHERE t.tenant_id = :tenant_id AND t.name = :tag AND NOT n.archived
ORDER BY n.updated_at DESC
LIMIT 20;

-- name: tag_names(tenant_id)
-- No querywarden lines: :tenant_id has no value, so querywarden lists it as skipped.
SELECT name FROM tags WHERE tenant_id = :tenant_id ORDER BY name;
