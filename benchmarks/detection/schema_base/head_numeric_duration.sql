-- Head migration (column type, same plan): durations keep the milliseconds the mobile apps send,
-- so duration_s becomes numeric(12,3). Every query keeps its plan and nearly its blocks, but
-- aggregates over the column now run numeric arithmetic instead of integer arithmetic.
ALTER TABLE time_entries ALTER COLUMN duration_s TYPE numeric(12,3);
