-- Not a catalog: a migration that drops the partial index of running timers, the index behind the
-- hottest query (running_timer) and stop_timer.
DROP INDEX time_entries_running_timer_idx;
