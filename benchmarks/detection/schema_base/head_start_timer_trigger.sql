-- Head migration (CPU-only): a BEFORE ROW trigger on the hot write that starts a timer. It fires
-- for rows of running timers only (WHEN stopped_at IS NULL), so the seed's year of finished entries
-- loads as fast as before and the data are the base's. Its work is a stand-in for validation and
-- normalisation of the new timer; the amount is the number after the knob marker, set by base_ab.py
-- from its calibration (x1.5 of start_timer_mobile); as committed, about x1.5 on a quiet machine.
CREATE FUNCTION time_entries_check_new_timer() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
    IF length(translate(repeat(left(NEW.description, 1), /* knob */ 2000), 'aeiou', 'AEIOU')) < 0 THEN
        RAISE EXCEPTION 'time_entries_check_new_timer: unreachable';
    END IF;
    NEW.description := btrim(NEW.description);
    RETURN NEW;
END
$$;

CREATE TRIGGER time_entries_check_new_timer
    BEFORE INSERT OR UPDATE ON time_entries
    FOR EACH ROW
    WHEN (NEW.stopped_at IS NULL)
    EXECUTE FUNCTION time_entries_check_new_timer();
