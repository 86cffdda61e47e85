-- Migration under review: e-mail uniqueness moves to the application ("users may share an address
-- across workspaces"), so the unique constraint, and with it the only index on users.email, goes.
ALTER TABLE users DROP CONSTRAINT users_email_key;
