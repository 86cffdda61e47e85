"""Where a captured statement's data is: committed, for any connection to see, or only inside the
test's own open transaction.

pytest-django's `db`, SQLAlchemy's "join the session into an external transaction" and querywarden's
own `querywarden_db` run each test in a transaction that is rolled back afterwards, so the rows a
test creates are visible to its connection alone. A measurement on another connection would see
other data than the statement saw and pass what it should judge; such statements are measured on
the test's connection itself, or, where that cannot be had, not at all (the test fails, saying why).
"""

from __future__ import annotations

import asyncio
import weakref
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.pq import TransactionStatus

from .query import CapturedStatement

_WROTE = "SELECT pg_current_xact_id_if_assigned() IS NOT NULL"
# One synchronous connection per async one, so the statements of one connection are measured together.
_SYNC_TWINS: weakref.WeakKeyDictionary[psycopg.AsyncConnection[Any], psycopg.Connection[Any]] = weakref.WeakKeyDictionary()


@dataclass(frozen=True)
class Host:
    """Where to measure a statement: on `connection` (the test's, inside its transaction), or, with
    neither set, on a connection of the measurer's own; `refusal` says why it cannot be measured."""

    connection: psycopg.Connection[Any] | None = None
    refusal: str | None = None


ELSEWHERE = Host()


def _holds_writes(cursor: Any) -> bool:
    cursor.execute(_WROTE)
    row = cursor.fetchone()
    return bool(row and row[0])


def host_for(statement: CapturedStatement) -> Host:
    """Where `statement` can be measured on the data it saw (asked after the test body, before teardown)."""
    live = statement.connection() if statement.connection is not None else None
    if live is None or getattr(live, "closed", False):
        return ELSEWHERE  # its transaction ended with it: only committed rows remain, for anyone to see
    if isinstance(live, psycopg.AsyncConnection):
        return _async_host(live)
    if isinstance(live, psycopg.Connection):
        return _psycopg_host(live)
    return _other_driver_host(live)


def _psycopg_host(conn: psycopg.Connection[Any]) -> Host:
    status = conn.info.transaction_status
    if status == TransactionStatus.IDLE:
        return ELSEWHERE
    if status == TransactionStatus.INERROR:
        return Host(refusal=(
            "the test's transaction is aborted (an error inside it was caught and not rolled back), so the rows it "
            "wrote cannot be read to measure this statement on them; roll back to a savepoint after the error"
        ))
    if status != TransactionStatus.INTRANS:
        return Host(refusal=(
            "the test's connection is still busy (a result not read to its end, a COPY in progress) when the test "
            "ends; read results to the end inside the capture block"
        ))
    with psycopg.Cursor(conn) as cursor:
        if not _holds_writes(cursor):
            return ELSEWHERE  # an open transaction that wrote nothing sees what any connection sees
    return Host(connection=conn)


def _async_host(live: psycopg.AsyncConnection[Any]) -> Host:
    """An async connection is measured through a synchronous connection over the same libpq connection,
    which is possible while no event loop is running it: after the test coroutine has returned."""
    if live.info.transaction_status == TransactionStatus.IDLE:
        return ELSEWHERE
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:
        return Host(refusal="an async connection's open transaction cannot be measured while its event loop runs")
    twin = _SYNC_TWINS.get(live)
    if twin is None:
        twin = _SYNC_TWINS[live] = psycopg.Connection(live.pgconn)
    return _psycopg_host(twin)


def _other_driver_host(live: Any) -> Host:
    """Another driver (psycopg2, asyncpg under SQLAlchemy): measured elsewhere unless its transaction
    holds writes, which only psycopg 3 can measure in place."""
    info = getattr(live, "info", None)
    status = getattr(info, "transaction_status", None)
    if status is None or int(status) == int(TransactionStatus.IDLE):
        return ELSEWHERE
    try:
        cursor = live.cursor()
        try:
            wrote = _holds_writes(cursor)
        finally:
            cursor.close()
    except Exception:  # noqa: BLE001 - any driver's error means the same: we cannot tell
        wrote = True
    if not wrote:
        return ELSEWHERE
    driver = type(live).__module__.split(".")[0]
    return Host(refusal=(
        f"the test's open transaction holds rows no other connection can see, and its connection is {driver}'s: "
        "querywarden measures inside a test's transaction through psycopg 3 only (Django's postgresql backend "
        "with psycopg installed, SQLAlchemy's postgresql+psycopg dialect)"
    ))
