"""A test's transaction, rolled back after it: the database a guarded test sees stays the seeded one
without a clone per test.

The connection `querywarden_db` hands a test is a psycopg connection whose `commit()` and
`rollback()` act on a savepoint, as Django's TestCase treats commits: the test sees its own writes,
and its statements are measured inside its transaction, on those writes. A COMMIT the test sends as
SQL (or through another connection) cannot be undone; it is noticed after the test, and the clone is
then replaced before the next test.

Rolled back, a test's writes still leave dead rows and index entries behind, and later tests on the
same clone would read past them (the buffers of a lookup of a test's own new rows grew 4 → 15 over a
run): the tables a test wrote are vacuumed after it, which removes both and gives back the pages.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import psycopg
from psycopg.pq import TransactionStatus

_SAVEPOINT = "querywarden_test"


class RolledBackConnection(psycopg.Connection[Any]):
    """A psycopg connection inside a transaction the fixture rolls back; commits keep to a savepoint."""

    def commit(self) -> None:
        if self.info.transaction_status == TransactionStatus.INTRANS:
            self.execute(f"RELEASE SAVEPOINT {_SAVEPOINT}")
            self.execute(f"SAVEPOINT {_SAVEPOINT}")
        else:
            super().commit()

    def rollback(self) -> None:
        if self.info.transaction_status in (TransactionStatus.INTRANS, TransactionStatus.INERROR):
            self.execute(f"ROLLBACK TO SAVEPOINT {_SAVEPOINT}")
        else:
            super().rollback()


def begin(conn: psycopg.Connection[Any]) -> datetime:
    """Open the transaction a test runs in; its start time tells later whether it was ended."""
    started = transaction_started(conn)
    conn.execute(f"SAVEPOINT {_SAVEPOINT}")
    return started


def transaction_started(conn: psycopg.Connection[Any]) -> datetime:
    """When the connection's transaction began (opening one if none is open)."""
    with psycopg.Cursor(conn) as cur:
        cur.execute("SELECT transaction_timestamp()")
        row = cur.fetchone()
    assert row is not None
    return row[0]  # type: ignore[no-any-return]


def still_open(conn: psycopg.Connection[Any], started: datetime) -> bool:
    """True when the transaction `begin` opened is still the connection's (nothing was committed)."""
    if conn.closed or conn.info.transaction_status != TransactionStatus.INTRANS:
        return False  # ended, or aborted and no longer able to say whether it is the same one
    with psycopg.Cursor(conn) as cur:
        cur.execute("SELECT transaction_timestamp()")
        row = cur.fetchone()
    return row is not None and row[0] == started


_WRITTEN = """
SELECT schemaname, relname FROM pg_stat_xact_user_tables
WHERE n_tup_ins + n_tup_upd + n_tup_del > 0 ORDER BY 1, 2
"""


def written_tables(conn: Any) -> list[tuple[str, str]]:
    """The tables (schema, name) the connection's open transaction wrote, rolled-back savepoints
    included; nothing when it has no open transaction to ask."""
    info = getattr(conn, "info", None)
    if info is None or conn.closed or int(info.transaction_status) != int(TransactionStatus.INTRANS):
        return []
    cursor = conn.cursor()
    try:
        cursor.execute(_WRITTEN)
        return [(str(schema), str(name)) for schema, name in cursor.fetchall()]
    finally:
        cursor.close()
