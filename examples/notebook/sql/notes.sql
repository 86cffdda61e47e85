-- notebook's note queries: a plain aiosql file, loaded by app.py with
-- aiosql.from_path("sql", "psycopg") and guarded by querywarden unchanged.
--
-- querywarden reads `calls-per-minute`, `params` / `params[label]` and `budget-ms` from the
-- comment lines under a name (aiosql takes them as the docstring); other comment lines are
-- documentation. Tenant 1 is the big tenant, tenant 7 a typical one (see seed.sql); even note
-- ids (4242) belong to tenant 1, odd ones (4243) to the small tenants.

-- name: recent_notes(tenant_id)
-- The note list every user lands on: the tenant's 20 latest live notes.
-- note: measured for a typical tenant and for the big one, each against its own baseline.
-- calls-per-minute: 9000
-- params[typical]: {"tenant_id": 7}
-- params[big]: {"tenant_id": 1}
SELECT id, title, updated_at
FROM notes
WHERE tenant_id = :tenant_id AND NOT archived
ORDER BY updated_at DESC
LIMIT 20;

-- name: get_note(note_id)^
-- One note, by id.
-- calls-per-minute: 6000
-- params: {"note_id": 4242}
SELECT id, tenant_id, title, body, updated_at
FROM notes
WHERE id = :note_id;

-- name: count_notes(tenant_id)$
-- The number on the tenant's sidebar.
-- calls-per-minute: 600
-- params: [{"tenant_id": 7}, {"tenant_id": 1}]
SELECT count(*)
FROM notes
WHERE tenant_id = :tenant_id AND NOT archived;

-- name: search_titles(tenant_id,pattern)
-- Title search. `::text` is a cast and ':' inside a string is text, not parameters.
-- calls-per-minute: 300
-- params: {"tenant_id": 1, "pattern": "note 12%"}
SELECT id, title, to_char(updated_at AT TIME ZONE 'UTC', 'HH24:MI') AS at
FROM notes
WHERE tenant_id = :tenant_id AND title LIKE :pattern::text AND title <> 'a:b'
ORDER BY updated_at DESC
LIMIT 10;

-- name: add_note(tenant_id,title,body)<!
-- calls-per-minute: 120
-- params: {"tenant_id": 7, "title": "Standup", "body": "Notes from the standup"}
INSERT INTO notes (tenant_id, title, body, updated_at)
VALUES (:tenant_id, :title, :body, timestamptz '2026-06-01 00:00:00+00')
RETURNING id;

-- name: archive_note(note_id)!
-- calls-per-minute: 60
-- params: {"note_id": 4243}
UPDATE notes SET archived = true WHERE id = :note_id;

-- name: import_notes*!
-- Bulk import: aiosql runs it once per row, so querywarden lists it as skipped.
INSERT INTO notes (tenant_id, title, body, updated_at)
VALUES (:tenant_id, :title, :body, :updated_at);

-- name: refresh_statistics#
-- A maintenance script: querywarden lists it as skipped.
ANALYZE notes;
ANALYZE note_tags;
