"""A small bookshop on SQLAlchemy 2 (psycopg 3 driver), its schema managed by Alembic."""
