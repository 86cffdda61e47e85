-- Head migration (benign): an index for an admin listing of clients by creation date; no catalog
-- query reads clients by it and no catalog write touches clients.
CREATE INDEX clients_created_idx ON clients (created_at);
