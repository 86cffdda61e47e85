-- Head migration (column type, index lost): time_entry_tags.time_entry_id becomes numeric(20) "to
-- hold the legacy importer's ids", and its foreign key goes (numeric cannot reference bigint).
-- A join `te.id = tt.time_entry_id` now compares te.id::numeric, which time_entries_pkey cannot
-- serve: the entries of a tag are found by a hash join over a sequential scan of time_entries.
ALTER TABLE time_entry_tags
    DROP CONSTRAINT time_entry_tags_time_entry_id_fkey,
    ALTER COLUMN time_entry_id TYPE numeric(20);
