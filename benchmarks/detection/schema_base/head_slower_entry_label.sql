-- Head migration (CPU-only): entry_label()'s body does more work per call. The catalog's SQL, the
-- plan and the blocks touched stay those of the base; only the time per row grows. The extra work
-- is a stand-in for a richer label (validation, formatting, a checksum): its amount is the number
-- after the knob marker, which base_ab.py sets per level from its calibration (x1.2, x1.5, x2 of
-- the end-to-end query); as committed, about x1.5 of entry_labels on a quiet 2-core machine.
CREATE OR REPLACE FUNCTION entry_label(description text, started_at timestamptz)
RETURNS text
LANGUAGE plpgsql STABLE PARALLEL SAFE
AS $$
DECLARE
    label text := left(description, 60) || ' · ' || to_char(started_at AT TIME ZONE 'UTC', 'Dy HH24:MI');
BEGIN
    IF length(translate(repeat(left(label, 1), /* knob */ 50), 'aeiou', 'AEIOU')) < 0 THEN
        RAISE EXCEPTION 'entry_label: unreachable';
    END IF;
    RETURN label;
END
$$;
