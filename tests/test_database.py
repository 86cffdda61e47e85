"""Creating throwaway databases: the clone statement follows the server's version."""

from __future__ import annotations

import psycopg

from querywarden.database import Server, create_statement, dbname_of


def test_a_clone_copies_files_where_the_server_can_and_plainly_on_postgresql_14(pg_dsn: str) -> None:
    with psycopg.connect(pg_dsn) as conn:
        on_15 = create_statement("copy", "qw_seed_x", 150004).as_string(conn)
        on_14 = create_statement("copy", "qw_seed_x", 140011).as_string(conn)
        empty = create_statement("fresh", None, 150004).as_string(conn)
    assert on_15 == 'CREATE DATABASE "copy" TEMPLATE "qw_seed_x" STRATEGY FILE_COPY'
    assert on_14 == 'CREATE DATABASE "copy" TEMPLATE "qw_seed_x"'  # 14 knows no STRATEGY
    assert empty == 'CREATE DATABASE "fresh"'


def test_a_clone_carries_the_templates_rows_and_is_dropped_after(server: Server, scratch_db: str) -> None:
    with psycopg.connect(scratch_db, autocommit=True) as conn:
        conn.execute("CREATE TABLE t AS SELECT generate_series(1, 3) AS n")
    template = dbname_of(scratch_db)
    with server.clone(template, prefix="qw_test") as dsn, psycopg.connect(dsn) as conn:
        copied = conn.execute("SELECT sum(n) FROM t").fetchone()
        clone_name = conn.info.dbname
    assert copied == (6,)
    assert not server.exists(clone_name)
