-- notebook: deterministic seed data (no random(): every value is arithmetic on the row number).
--
-- Tenant skew: tenant 1 holds half of all notes, tenants 2..500 share the other half (~24 notes
-- each at scale 1), so the same query is cheap for a typical tenant (7) and costly for the big one.
-- At scale 1: 500 tenants, 24,000 notes (every tenth archived), 2,500 tags, 24,000 note tags.
-- Below 30,000 rows per table ANALYZE reads every row, so the statistics (and the plans) are the
-- same on every machine. Timestamps count back from a fixed "now", 2026-06-01 00:00 UTC.

INSERT INTO tenants (id, name)
SELECT t, 'tenant ' || t FROM generate_series(1, 500) AS t;

INSERT INTO notes (tenant_id, title, body, updated_at, archived)
SELECT CASE WHEN g % 2 = 0 THEN 1 ELSE 2 + (g / 2) % 499 END,
       'note ' || g,
       repeat('lorem ipsum ', 1 + g % 20),
       timestamptz '2026-06-01 00:00:00+00' - make_interval(mins => g),
       g % 10 = 0
FROM generate_series(1, (24000 * coalesce(nullif(current_setting('querywarden.scale', true), '')::numeric, 1))::int) AS g
ORDER BY g;

INSERT INTO tags (tenant_id, name)
SELECT t, tag
FROM generate_series(1, 500) AS t, unnest(ARRAY['work', 'home', 'ideas', 'todo', 'later']) WITH ORDINALITY AS x (tag, n)
ORDER BY t, n;

INSERT INTO note_tags (tag_id, note_id)
SELECT tg.id, n.id
FROM notes n
JOIN tags tg ON tg.tenant_id = n.tenant_id
            AND tg.name = (ARRAY['work', 'home', 'ideas', 'todo', 'later'])[1 + n.id % 5]
ORDER BY n.id;
