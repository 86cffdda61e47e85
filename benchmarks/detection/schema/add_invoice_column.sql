-- Migration under review (benign): time entries get an optional invoice reference and a partial
-- index to find invoiced entries. No catalog query reads either.
ALTER TABLE time_entries ADD COLUMN invoice_id integer;
CREATE INDEX time_entries_invoice_idx ON time_entries (invoice_id) WHERE invoice_id IS NOT NULL;
