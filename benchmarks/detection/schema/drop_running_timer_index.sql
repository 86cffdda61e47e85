-- Migration under review: "the partial index of running timers is redundant with
-- time_entries_user_started_idx", so it is dropped. It serves running_timer (hot) and stop_timer.
DROP INDEX time_entries_running_timer_idx;
