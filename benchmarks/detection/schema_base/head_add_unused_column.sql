-- Head migration (benign): time entries get an optional external reference that no catalog query
-- reads. The rows get a null bitmap and grow by a few bytes: the table is a little larger, every
-- plan stays the same.
ALTER TABLE time_entries ADD COLUMN external_ref text;
