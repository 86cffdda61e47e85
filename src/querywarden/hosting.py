"""Where a captured statement's data is: committed, for any connection to see, or only inside the
test's own open transaction.

pytest-django's `db`, SQLAlchemy's "join the session into an external transaction" and querywarden's
own `querywarden_db` run each test in a transaction that is rolled back afterwards, so the rows a
test creates are visible to its connection alone. A measurement on another connection would see
other data than the statement saw and pass what it should judge; such statements are measured on
the test's connection itself, just before they run there (`InTransaction`, a capture's `before`),
or, where that cannot be had, not at all (the test fails, saying why).
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.pq import PipelineStatus, TransactionStatus
from psycopg.rows import tuple_row

from .engine import Probe, measure_in_transaction
from .fingerprint import identify
from .observation import Outcome, Unmeasured
from .path import PathSpec
from .policy import MeasureSettings
from .query import Binding, GuardedQuery, Params

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


def host_of(live: object, writes: bool) -> Host:
    """Where a statement about to run on the driver connection `live` can be measured on the data it
    will see: on that connection when its open transaction holds writes (only it sees those rows) or
    the statement itself writes (measured there, rolled back, instead of on a clone); else elsewhere."""
    if live is None or getattr(live, "closed", False):
        return ELSEWHERE
    if isinstance(live, psycopg.AsyncConnection):
        return _async_host(live, writes)
    if isinstance(live, psycopg.Connection):
        return _psycopg_host(live, writes)
    return _other_driver_host(live)


def _psycopg_host(conn: psycopg.Connection[Any], writes: bool) -> Host:
    status = conn.info.transaction_status
    if status in (TransactionStatus.IDLE, TransactionStatus.INERROR):
        return ELSEWHERE  # autocommit or no transaction: committed data; aborted: the statement fails too
    if conn.pgconn.pipeline_status != PipelineStatus.OFF:
        return Host(refusal=(
            "the statement ran in pipeline mode inside the test's open transaction: querywarden cannot run its "
            "measurement ahead of it on that connection there, nor tell whether the transaction holds rows no other "
            "connection sees; capture the statements outside `conn.pipeline()`, or commit before the pipeline"
        ))
    if status != TransactionStatus.INTRANS:
        return Host(refusal=(
            "the test's connection was still busy (a result not read to its end, a COPY in progress) when the "
            "statement ran, so it could not be measured on the rows the test's transaction holds; read results to the end"
        ))
    if writes:
        return Host(connection=conn)
    with psycopg.Cursor(conn, row_factory=tuple_row) as cursor:
        if not _holds_writes(cursor):
            return ELSEWHERE  # an open transaction that wrote nothing sees what any connection sees
    return Host(connection=conn)


def _async_host(live: psycopg.AsyncConnection[Any], writes: bool) -> Host:
    """An async connection is measured through a synchronous connection over the same libpq connection:
    the coroutine that owns it is waiting for this very statement, so nothing else uses it meanwhile."""
    if live.info.transaction_status == TransactionStatus.IDLE:
        return ELSEWHERE
    twin = _SYNC_TWINS.get(live)
    if twin is None:
        twin = _SYNC_TWINS[live] = _sync_twin(live)
    return _psycopg_host(twin, writes)


def _sync_twin(live: psycopg.AsyncConnection[Any]) -> psycopg.Connection[Any]:
    """A synchronous Connection over `live`'s libpq connection. Making one points the libpq
    connection's notice and notification handlers at it; they are given back to `live`, so the
    application's notice handlers and `notifies()` still hear the server (also what the measuring said)."""
    pgconn = live.pgconn
    notice, notify = pgconn.notice_handler, pgconn.notify_handler
    twin = psycopg.Connection(pgconn)
    pgconn.notice_handler, pgconn.notify_handler = notice, notify
    return twin


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


class InTransaction:
    """A capture's `before` for one test: each statement whose data only the test's own transaction
    can see is measured there just before it runs, on exactly the rows it is about to see (its own
    effect not yet among them); the outcome is recorded with the statement. A statement repeated
    (an N+1 loop) is measured on its first run only, as the path judges it by its first.
    """

    def __init__(self, settings: MeasureSettings, spec: PathSpec, probe: Probe) -> None:
        self.settings, self.spec, self.probe = settings, spec, probe
        self._seen: set[str] = set()
        self._kinds: dict[str, tuple[str, str]] = {}

    def __call__(self, live: object, sql: str, params: Params, binding: Binding) -> Outcome | None:
        kind = self._kinds.get(sql)
        if kind is None:
            identity = identify(sql)
            kind = self._kinds[sql] = (identity.kind, identity.fingerprint)
        if kind[0] == "refused" or kind[1] in self._seen:
            return None
        self._seen.add(kind[1])
        host = host_of(live, writes=kind[0] != "read")
        spec = self.spec
        query = GuardedQuery("#", sql, params, spec.calls_per_minute, allow_seq_scan=spec.allow_seq_scan)
        if host.refusal is not None:
            return Unmeasured(query.name, host.refusal, sql, spec.calls_per_minute)
        if host.connection is None:
            return None
        return measure_in_transaction(host.connection, query, binding, self.settings, self.probe)
