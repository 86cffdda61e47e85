"""Capturing the statements a block of application code runs, with the line of code that ran each.

    with capture(conn) as captured:
        app.dashboard(conn, user_id=42)
    captured.statements  # SQL, parameters, calling line, in the order they ran

A target is a psycopg 3 `Connection` or `AsyncConnection`; a SQLAlchemy 2 `Engine`, `Connection`,
`Session` or `scoped_session`, or an asyncio `AsyncEngine`, `AsyncConnection`, `AsyncSession` or
`async_scoped_session` (psycopg driver); or a Django connection (psycopg 3 backend).

Async code is captured by the same block, which is a plain `with` (it never awaits) and also works
as `async with`:

    with capture(aconn) as captured:
        await app.dashboard(aconn, user_id=42)

- psycopg has no statement hook, so for the duration of the block the connection's
  `cursor_factory` and `server_cursor_factory` are replaced by recording subclasses of whatever
  they were (plain, client-side binding, raw, or an application's own class; their async twins on an
  `AsyncConnection`) and restored after.
  Cursors opened by the connection inside the block record `execute`, `executemany` and `stream`,
  also for server-side (named) cursors; a cursor opened before the block is not seen, and neither
  is COPY. `connection.execute()` opens such a cursor too.
- SQLAlchemy: its `after_cursor_execute` event, which fires once the statement ran, on the engine
  or connection (a session is captured through the engine or connection it is bound to; an asyncio
  engine, connection or session through the synchronous one it drives, `sync_engine`,
  `sync_connection`, `sync_session`).
- Django: `connection.execute_wrapper`, for the connection of the current thread.

The calling line is the application's: under SQLAlchemy's asyncio extension the statement runs in a
greenlet whose own stack holds only SQLAlchemy, so the search goes on in the greenlet that started
it, where the application's coroutines wait (`await conn.execute(...)`).

A value composed into a statement with `psycopg.sql.Literal` is recorded as a placeholder with the
value as a parameter, like a bound value: it never reaches a baseline unless `store-params` says so.

A statement is recorded once it has run without error. Transaction control (BEGIN, COMMIT,
SAVEPOINT, RELEASE, ROLLBACK…) is not recorded: it does no work to measure, and a Session joined
into a test's transaction issues SAVEPOINTs of its own that would otherwise count as the
application's statements. Nested and repeated captures of the same target share one hook: a
statement reaches every block that is open around it, once each.
"""

from __future__ import annotations

import re
import sys
import sysconfig
import threading
import weakref
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any

import psycopg
from psycopg import sql as pg_sql
from psycopg.conninfo import make_conninfo

from .query import Binding, CapturedStatement, Params, SourceLocation

# Frames of these top-level packages are library code, never "the calling line".
LIBRARY_PACKAGES = frozenset(
    {"querywarden", "psycopg", "psycopg_binary", "psycopg_c", "psycopg_pool", "sqlalchemy", "django", "_pytest", "pluggy"}
)
_LIBRARY_DIRS = ("site-packages", "dist-packages")
_STDLIB_DIRS = tuple(
    sorted(
        {
            variant
            for path in (sysconfig.get_paths().get("stdlib"), sysconfig.get_paths().get("platstdlib"))
            if path
            for variant in (str(Path(path)) + "/", str(Path(path).resolve()) + "/")
        }
    )
)


# Called just before a statement runs, with the driver connection, the statement as it will be
# recorded, its parameters and binding; what it returns is recorded with the statement as `prior`.
Before = Callable[[object, str, Params, Binding], object | None]


class Capture:
    """The statements recorded while a capture block was open, in the order they ran.

    `before`, when given, is told of each statement just before it runs (the pytest plugin measures
    there a statement whose data only its own transaction can see, in exactly that state).
    """

    def __init__(self, before: Before | None = None) -> None:
        self._statements: list[CapturedStatement] = []
        self._lock = threading.Lock()
        self.before = before

    def record(self, statement: CapturedStatement) -> None:
        with self._lock:
            self._statements.append(statement)

    @property
    def statements(self) -> tuple[CapturedStatement, ...]:
        with self._lock:
            return tuple(self._statements)

    @property
    def executions(self) -> int:
        """Statements run, counting each parameter set of an `executemany`."""
        return sum(statement.executions for statement in self.statements)

    def __len__(self) -> int:
        return len(self.statements)

    def __iter__(self) -> Iterator[CapturedStatement]:
        return iter(self.statements)

    def __repr__(self) -> str:
        return f"<Capture of {len(self)} statements>"


# --- where a statement came from ------------------------------------------------------------------


def _is_library(module: str, filename: str) -> bool:
    if module.partition(".")[0] in LIBRARY_PACKAGES:
        return True
    if filename.startswith("<"):
        return True
    parts = Path(filename).parts
    if any(part in _LIBRARY_DIRS for part in parts):
        return True
    return filename.startswith(_STDLIB_DIRS)


def calling_line() -> tuple[SourceLocation | None, str | None]:
    """The first frame outside querywarden, database drivers, ORMs, pytest, the standard library and
    installed packages: the application line that ran the statement.

    Where the current greenlet's stack holds library frames only (SQLAlchemy's asyncio extension runs
    the statement in a greenlet of its own), the search goes on in the greenlet that switched to it,
    and so on up: the application's coroutines wait there, in the frame chain of the one suspended."""
    seen: dict[str, bool] = {}
    found = _application_frame(sys._getframe(1), seen)
    if found is not None:
        return found
    greenlet = sys.modules.get("greenlet")  # not imported: no greenlet runs, nothing more to search
    if greenlet is None:
        return None, None
    try:
        parent = greenlet.getcurrent().parent
    except Exception:  # noqa: BLE001 - a greenlet we cannot inspect hides no more frames we can read
        return None, None
    while parent is not None:
        frame = getattr(parent, "gr_frame", None)
        if frame is not None:
            found = _application_frame(frame, seen)
            if found is not None:
                return found
        parent = getattr(parent, "parent", None)
    return None, None


def _application_frame(frame: FrameType | None, seen: dict[str, bool]) -> tuple[SourceLocation, str] | None:
    while frame is not None:
        filename = frame.f_code.co_filename
        module = str(frame.f_globals.get("__name__", ""))
        key = f"{module}\0{filename}"
        library = seen.get(key)
        if library is None:
            library = seen[key] = _is_library(module, filename)
        if not library:
            return SourceLocation(filename, frame.f_lineno), frame.f_code.co_name
        frame = frame.f_back
    return None


# --- turning what the driver was given into what we record ----------------------------------------


def _text(query: Any, context: Any) -> str:
    if isinstance(query, str):
        return query
    if isinstance(query, bytes):
        return query.decode(_encoding(context), errors="replace")
    if isinstance(query, pg_sql.Composable):
        return query.as_string(context)
    return str(query)


# psycopg's placeholder syntax: `%s`, `%b`, `%t`, `%(name)s`, and `%%` for a literal percent sign.
_PLACEHOLDER = re.compile(r"%(?:\((?P<name>[^)]*)\))?(?P<code>.)", re.DOTALL)
# `interval '1 day'`: a type name followed by a string constant. A parameter cannot stand there, so the
# value is bound as `CAST(%s AS interval)` instead.
_TYPED_CONSTANT = re.compile(
    r"\b(?P<type>interval|date|time|timetz|timestamp|timestamptz|json|jsonb|uuid|inet|cidr|macaddr|numeric|"
    r"decimal|bigint|integer|int|int2|int4|int8|smallint|real|boolean|bool|text|varchar|bytea|money|xml)\s*$",
    re.IGNORECASE,
)


def _recorded(query: Any, params: Any, context: Any, binding: Binding) -> tuple[str, Params]:
    """The statement's text and parameters as recorded.

    A `sql.Literal` composed into the statement becomes a placeholder and its value a parameter, so
    a value written into the SQL (an email, an id) stays out of baselines and reports like a bound
    one, and the recorded statement runs as the original did.
    """
    if not isinstance(query, pg_sql.Composable):
        return _text(query, context), _params(params)
    pieces = _pieces(query, context)
    if not any(isinstance(piece, pg_sql.Literal) for piece in pieces):
        return query.as_string(context), _params(params)
    if binding == "raw":
        return _bind_numbered(pieces, params)
    return _bind_pyformat(pieces, params)


def _pieces(query: pg_sql.Composable, context: Any) -> list[str | pg_sql.Literal]:
    """A composed statement as its rendered text runs, with each literal left as a `Literal`."""
    pieces: list[str | pg_sql.Literal] = []
    for part in _flatten(query):
        if isinstance(part, pg_sql.Literal):
            pieces.append(part)
        elif pieces and isinstance(pieces[-1], str):
            pieces[-1] += part.as_string(context)
        else:
            pieces.append(part.as_string(context))
    return pieces


def _flatten(query: pg_sql.Composable) -> Iterator[pg_sql.Composable]:
    if isinstance(query, pg_sql.Composed):
        for part in query:
            yield from _flatten(part)
    else:
        yield query


def _value(literal: pg_sql.Literal) -> Any:
    return literal._obj  # psycopg keeps a Literal's value there and offers no public accessor


def _placed(text: str, placeholder: str) -> tuple[str, str]:
    """The text before a literal and the placeholder for it, cast where a type name precedes it."""
    typed = _TYPED_CONSTANT.search(text)
    if typed is None:
        return text, placeholder
    return text[: typed.start()], f"CAST({placeholder} AS {typed.group('type')})"


def _bind_numbered(pieces: list[str | pg_sql.Literal], params: Any) -> tuple[str, Params]:
    """RawCursor: literals become `$n` after the statement's own parameters."""
    values = list(params) if isinstance(params, Sequence) and not isinstance(params, (str, bytes)) else []
    out: list[str] = []
    for piece in pieces:
        if isinstance(piece, str):
            out.append(piece)
        else:
            values.append(_value(piece))
            before, placeholder = _placed(out.pop() if out else "", f"${len(values)}")
            out += [before, placeholder]
    return "".join(out), tuple(values)


def _bind_pyformat(pieces: list[str | pg_sql.Literal], params: Any) -> tuple[str, Params]:
    """Cursor and ClientCursor: literals become `%s` among the statement's own positional parameters,
    or `%(name)s` beside its named ones."""
    texts = "".join(piece for piece in pieces if isinstance(piece, str))
    named = isinstance(params, Mapping) or (
        params is not None and any(m.group("name") is not None for m in _PLACEHOLDER.finditer(texts))
    )
    given: dict[str, Any] = dict(params) if isinstance(params, Mapping) else {}
    positional = list(params) if params is not None and not named else []
    values: list[Any] = []
    out: list[str] = []
    for piece in pieces:
        if isinstance(piece, str):
            # Without parameters psycopg sent `%` as it is; with them, it must be written `%%`.
            out.append(piece.replace("%", "%%") if params is None else piece)
            if not named and params is not None:
                values += positional[: _positional_count(piece)]
                del positional[: _positional_count(piece)]
            continue
        if named:
            name = _free_name(given)
            given[name] = _value(piece)
            placeholder = f"%({name})s"
        else:
            values.append(_value(piece))
            placeholder = "%s"
        before, placeholder = _placed(out.pop() if out else "", placeholder)
        out += [before, placeholder]
    if named:
        return "".join(out), given
    return "".join(out), tuple(values + positional)


def _positional_count(text: str) -> int:
    return sum(1 for m in _PLACEHOLDER.finditer(text) if m.group("name") is None and m.group("code") != "%")


def _free_name(taken: Mapping[str, Any]) -> str:
    number = 1
    while f"qw_literal_{number}" in taken:
        number += 1
    return f"qw_literal_{number}"


def _encoding(context: Any) -> str:
    try:
        return str(context.info.encoding)
    except AttributeError:
        return "utf-8"


def _params(params: Any) -> Params:
    """A shallow copy, so an application that reuses its parameter list cannot change the record."""
    if params is None:
        return None
    if isinstance(params, Mapping):
        return dict(params)
    if isinstance(params, Sequence) and not isinstance(params, (str, bytes)):
        return tuple(params)
    return params  # type: ignore[no-any-return]


def _binding(cursor: Any) -> Binding:
    if isinstance(cursor, (psycopg.RawCursor, psycopg.RawServerCursor, psycopg.AsyncRawCursor, psycopg.AsyncRawServerCursor)):
        return "raw"
    if isinstance(cursor, (psycopg.ClientCursor, psycopg.AsyncClientCursor)):
        return "client"
    return "server"


def conninfo_of(conn: Any) -> str:
    """The libpq conninfo a psycopg connection was opened with, password included ('' if unknown)."""
    try:
        info = conn.info
        dsn = str(info.dsn)
        password = info.password
    except (AttributeError, psycopg.Error):
        return ""
    return make_conninfo(dsn, password=password) if password else dsn


def _weak(conn: Any) -> Callable[[], object | None] | None:
    """A weak reference to the driver connection a statement ran on, so the record never keeps a
    connection open; None where the driver's connection cannot be referenced weakly."""
    if conn is None:
        return None
    try:
        return weakref.ref(conn)
    except TypeError:
        return None


# --- one hook per target, shared by every open capture of it --------------------------------------

class _Hook:
    """Installs a recording hook on one target while at least one capture of it is open."""

    def __init__(self, install: Callable[[_Hook], Callable[[], None]]) -> None:
        self._install = install
        self._uninstall: Callable[[], None] | None = None
        self.sinks: list[Capture] = []

    def attach(self, sinks: Sequence[Capture]) -> None:
        if self._uninstall is None:
            self._uninstall = self._install(self)
        self.sinks.extend(sinks)

    def detach(self, sinks: Sequence[Capture]) -> bool:
        """Remove `sinks`; uninstall when none are left. True when the hook is gone."""
        for sink in sinks:
            for index, present in enumerate(self.sinks):
                if present is sink:
                    del self.sinks[index]
                    break
        if self.sinks or self._uninstall is None:
            return not self.sinks
        uninstall, self._uninstall = self._uninstall, None
        uninstall()
        return True

    def wants_prior(self) -> bool:
        """Whether an open capture has a `before` to tell of statements about to run."""
        return not getattr(_BEFORE_RUNNING, "active", False) and any(sink.before is not None for sink in self.sinks)

    def prior(self, conn: object, sql: str, params: Params, binding: Binding) -> object | None:
        """What the first open capture with a `before` makes of a statement about to run. The hook is
        off meanwhile: whatever `before` runs on the connection is not the application's."""
        if getattr(_BEFORE_RUNNING, "active", False):
            return None
        for sink in list(self.sinks):
            if sink.before is not None:
                _BEFORE_RUNNING.active = True
                try:
                    return sink.before(conn, sql, params, binding)
                finally:
                    _BEFORE_RUNNING.active = False
        return None

    def emit(self, statement: CapturedStatement) -> None:
        if getattr(_BEFORE_RUNNING, "active", False) or _only_transaction_control(statement.sql):
            return
        delivered: list[Capture] = []
        for sink in list(self.sinks):
            if not any(sink is done for done in delivered):
                sink.record(statement)
                delivered.append(sink)


_BEFORE_RUNNING = threading.local()
_TRANSACTION_CONTROL = re.compile(
    r"\s*(?:--[^\n]*\n\s*)*(?:BEGIN|START\s+TRANSACTION|COMMIT|END|ROLLBACK|ABORT|SAVEPOINT|RELEASE)\b(?!\s*\()",
    re.IGNORECASE,
)


def _only_transaction_control(sql: str) -> bool:
    """BEGIN, SAVEPOINT x, COMMIT… alone: a statement string that also does something else is recorded."""
    return bool(_TRANSACTION_CONTROL.match(sql)) and ";" not in sql.strip().rstrip(";")


_HOOKS: dict[int, tuple[object, _Hook]] = {}
_HOOKS_LOCK = threading.RLock()


def _hook_for(conn: object) -> _Hook | None:
    entry = _HOOKS.get(id(conn))
    return entry[1] if entry is not None and entry[0] is conn else None


@contextmanager
def _hooked(key: object, install: Callable[[_Hook], Callable[[], None]], sinks: Sequence[Capture]) -> Iterator[None]:
    with _HOOKS_LOCK:
        entry = _HOOKS.get(id(key))
        if entry is None or entry[0] is not key:
            entry = (key, _Hook(install))
            _HOOKS[id(key)] = entry
        hook = entry[1]
        try:
            hook.attach(sinks)
        except BaseException:
            if not hook.sinks:
                del _HOOKS[id(key)]
            raise
    try:
        yield
    finally:
        with _HOOKS_LOCK:
            if hook.detach(sinks):
                _HOOKS.pop(id(key), None)


# --- psycopg: recording cursor classes -------------------------------------------------------------


@dataclass(frozen=True)
class _Pending:
    """A statement about to run on a hooked psycopg connection, as it will be recorded."""

    hook: _Hook
    text: str
    params: Params
    binding: Binding
    prior: object | None


def _pending_psycopg(cursor: Any, query: Any, params: Any) -> _Pending | None:
    hook = _hook_for(cursor.connection)
    if hook is None:
        return None
    binding = _binding(cursor)
    text, recorded_params = _recorded(query, params, cursor, binding)
    return _Pending(hook, text, recorded_params, binding, hook.prior(cursor.connection, text, recorded_params, binding))


async def _pending_psycopg_async(cursor: Any, query: Any, params: Any) -> _Pending | None:
    """`_pending_psycopg` on an AsyncConnection. What `before` does there, it does on the connection
    itself (hosting: through a synchronous twin over the same libpq connection), so it waits its turn
    for the connection's lock like any statement: never in the middle of another task's."""
    hook = _hook_for(cursor.connection)
    if hook is None or not hook.wants_prior():
        return _pending_psycopg(cursor, query, params)
    async with cursor.connection.lock:
        return _pending_psycopg(cursor, query, params)


def _record_psycopg(cursor: Any, pending: _Pending | None, executions: int, server_side: bool) -> None:
    if pending is None:
        return
    conn = cursor.connection
    source, function = calling_line()
    binding, text, recorded_params = pending.binding, pending.text, pending.params
    via = "psycopg async" if isinstance(conn, psycopg.AsyncConnection) else "psycopg"
    pending.hook.emit(
        CapturedStatement(
            sql=text,
            params=recorded_params,
            source=source,
            function=function,
            via=f"{via} server-side cursor" if server_side else via,
            executions=executions,
            binding=binding,
            database=conninfo_of(conn),
            connection=_weak(conn),
            prior=pending.prior,
        )
    )


_RECORDING_CLASSES: dict[type[Any], type[Any]] = {}


def _recording_cursor(base: type[Any]) -> type[Any]:
    """A subclass of the psycopg cursor class `base` that reports what it runs to its connection's hook."""
    with _HOOKS_LOCK:
        if base not in _RECORDING_CLASSES:
            if issubclass(base, (psycopg.AsyncCursor, psycopg.AsyncServerCursor)):
                _RECORDING_CLASSES[base] = _make_recording_async_cursor(base)
            else:
                _RECORDING_CLASSES[base] = _make_recording_cursor(base)
        return _RECORDING_CLASSES[base]


def _named(recording: type[Any], base: type[Any]) -> type[Any]:
    recording.__name__ = recording.__qualname__ = f"QuerywardenRecording{base.__name__}"
    recording.__module__ = __name__
    return recording


def _make_recording_cursor(base: type[Any]) -> type[Any]:
    server_side = issubclass(base, psycopg.ServerCursor)

    class Recording(base):  # type: ignore[misc]
        def execute(self, query: Any, params: Any = None, **kwargs: Any) -> Any:
            pending = _pending_psycopg(self, query, params)
            result = super().execute(query, params, **kwargs)
            _record_psycopg(self, pending, 1, server_side)
            return result

        def executemany(self, query: Any, params_seq: Iterable[Any], **kwargs: Any) -> Any:
            materialized = list(params_seq)
            pending = _pending_psycopg(self, query, materialized[0]) if materialized else None
            result = super().executemany(query, materialized, **kwargs)
            _record_psycopg(self, pending, len(materialized), server_side)
            return result

        def stream(self, query: Any, params: Any = None, **kwargs: Any) -> Iterator[Any]:
            pending = _pending_psycopg(self, query, params)
            rows = super().stream(query, params, **kwargs)
            first = True
            for row in rows:
                if first:
                    _record_psycopg(self, pending, 1, server_side)
                    first = False
                yield row
            if first:
                _record_psycopg(self, pending, 1, server_side)

    return _named(Recording, base)


def _make_recording_async_cursor(base: type[Any]) -> type[Any]:
    server_side = issubclass(base, psycopg.AsyncServerCursor)

    class Recording(base):  # type: ignore[misc]
        async def execute(self, query: Any, params: Any = None, **kwargs: Any) -> Any:
            pending = await _pending_psycopg_async(self, query, params)
            result = await super().execute(query, params, **kwargs)
            _record_psycopg(self, pending, 1, server_side)
            return result

        async def executemany(self, query: Any, params_seq: Iterable[Any], **kwargs: Any) -> Any:
            materialized = list(params_seq)
            pending = await _pending_psycopg_async(self, query, materialized[0]) if materialized else None
            result = await super().executemany(query, materialized, **kwargs)
            _record_psycopg(self, pending, len(materialized), server_side)
            return result

        async def stream(self, query: Any, params: Any = None, **kwargs: Any) -> AsyncIterator[Any]:
            pending = await _pending_psycopg_async(self, query, params)
            first = True
            async for row in super().stream(query, params, **kwargs):
                if first:
                    _record_psycopg(self, pending, 1, server_side)
                    first = False
                yield row
            if first:
                _record_psycopg(self, pending, 1, server_side)

    return _named(Recording, base)


def _install_psycopg(conn: psycopg.Connection[Any] | psycopg.AsyncConnection[Any]) -> Callable[[_Hook], Callable[[], None]]:
    def install(_: _Hook) -> Callable[[], None]:
        original, original_server = conn.cursor_factory, conn.server_cursor_factory
        recording, recording_server = _recording_cursor(original), _recording_cursor(original_server)
        conn.cursor_factory = recording
        conn.server_cursor_factory = recording_server

        def uninstall() -> None:
            # An application that set its own factory inside the block keeps it.
            if conn.cursor_factory is recording:
                conn.cursor_factory = original
            if conn.server_cursor_factory is recording_server:
                conn.server_cursor_factory = original_server

        return uninstall

    return install


# --- SQLAlchemy: the after_cursor_execute event ---------------------------------------------------


def _sqlalchemy_bind(target: Any) -> Any:
    """The Engine or Connection whose events see a target's statements (for an asyncio one, the
    synchronous Engine, Connection or Session it drives)."""
    from sqlalchemy.engine import Connection, Engine
    from sqlalchemy.orm import Session, scoped_session

    if type(target).__module__.startswith("sqlalchemy.ext.asyncio"):
        target = _sqlalchemy_sync_twin(target)
    if isinstance(target, scoped_session):
        target = target()
    if isinstance(target, Session):
        try:
            bind = target.get_bind()
        except Exception as exc:
            raise TypeError(f"cannot capture this SQLAlchemy Session: it has no bind ({exc}); capture its engine instead") from None
        return bind
    if isinstance(target, (Engine, Connection)):
        return target
    raise TypeError(
        f"cannot capture a {type(target).__module__}.{type(target).__qualname__}; pass an Engine, Connection or Session "
        "(or their asyncio AsyncEngine, AsyncConnection, AsyncSession)"
    )


def _sqlalchemy_sync_twin(target: Any) -> Any:
    """The synchronous Engine, Connection or Session behind an asyncio one: its events are the ones
    that fire (in the greenlet SQLAlchemy runs the statement in)."""
    from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_scoped_session

    if isinstance(target, async_scoped_session):
        target = target()
    if isinstance(target, AsyncSession):
        return target.sync_session
    if isinstance(target, AsyncEngine):
        return target.sync_engine
    if isinstance(target, AsyncConnection):
        if target.sync_connection is None:
            raise TypeError(
                "cannot capture this SQLAlchemy AsyncConnection: it is not started yet; capture it inside "
                "`async with engine.connect() as conn:` (or after `await conn.start()`), or capture its AsyncEngine"
            )
        return target.sync_connection
    return target


def _sqlalchemy_driver(conn: Any, cursor: Any) -> tuple[Any, Any]:
    """The psycopg connection and cursor behind what SQLAlchemy's cursor events are given: the DBAPI
    cursor itself under the synchronous dialect, SQLAlchemy's adapter of an AsyncConnection and its
    AsyncCursor under the asyncio one."""
    driver = getattr(cursor, "connection", None)
    if isinstance(driver, (psycopg.Connection, psycopg.AsyncConnection)):
        return driver, cursor
    inner = getattr(cursor, "_cursor", None)  # sqlalchemy.connectors.asyncio.AsyncAdapt_dbapi_cursor
    if isinstance(inner, (psycopg.AsyncCursor, psycopg.AsyncServerCursor)):
        return inner.connection, inner
    try:
        driver = conn.connection.driver_connection
    except Exception:  # noqa: BLE001 - a closed or invalidated connection: nothing to reference
        driver = None
    return (driver if driver is not None else getattr(cursor, "connection", None)), cursor


def _install_sqlalchemy(bind: Any) -> Callable[[_Hook], Callable[[], None]]:
    from sqlalchemy import event

    def install(hook: _Hook) -> Callable[[], None]:
        priors: dict[int, object | None] = {}  # by DBAPI cursor, from before to after the execution

        def first_set(parameters: Any, executemany: bool) -> tuple[Any, int]:
            if executemany and isinstance(parameters, Sequence) and not isinstance(parameters, (str, bytes)):
                return (parameters[0] if parameters else None), max(len(parameters), 1)
            return parameters, 1

        def before_cursor_execute(
            conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool
        ) -> None:
            params = _params(first_set(parameters, executemany)[0])
            driver, dbapi_cursor = _sqlalchemy_driver(conn, cursor)
            priors[id(cursor)] = hook.prior(driver, statement, params, _binding(dbapi_cursor))

        def after_cursor_execute(
            conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool
        ) -> None:
            params, executions = first_set(parameters, executemany)
            driver, dbapi_cursor = _sqlalchemy_driver(conn, cursor)
            source, function = calling_line()
            hook.emit(
                CapturedStatement(
                    sql=statement,
                    params=_params(params),
                    source=source,
                    function=function,
                    via="sqlalchemy async" if isinstance(driver, psycopg.AsyncConnection) else "sqlalchemy",
                    executions=executions,
                    binding=_binding(dbapi_cursor),
                    database=conninfo_of(driver),
                    connection=_weak(driver),
                    prior=priors.pop(id(cursor), None),
                )
            )

        listeners: list[tuple[str, Callable[..., None]]] = [
            ("before_cursor_execute", before_cursor_execute),
            ("after_cursor_execute", after_cursor_execute),
        ]
        for name, listener in listeners:
            event.listen(bind, name, listener)

        def uninstall() -> None:
            for name, listener in listeners:
                event.remove(bind, name, listener)

        return uninstall

    return install


# --- Django: connection.execute_wrapper ------------------------------------------------------------


def _django_connection(target: Any) -> Any:
    """The real connection behind `django.db.connection` (a per-thread proxy) or the target itself."""
    connections, alias = getattr(target, "_connections", None), getattr(target, "_alias", None)
    if connections is not None and alias is not None:
        return connections[alias]
    return target


def _install_django(connection: Any) -> Callable[[_Hook], Callable[[], None]]:
    if getattr(connection, "vendor", None) != "postgresql":
        raise TypeError(f"cannot capture a Django {getattr(connection, 'vendor', '?')} connection; querywarden measures PostgreSQL")

    def install(hook: _Hook) -> Callable[[], None]:
        def wrapper(execute: Callable[..., Any], sql: Any, params: Any, many: bool, context: Mapping[str, Any]) -> Any:
            if many:
                params = list(params)
            raw_cursor = getattr(context.get("cursor"), "cursor", None)
            first = (params[0] if params else None) if many else params
            driver_conn = getattr(context.get("connection"), "connection", None)
            binding = _binding(raw_cursor)
            text, recorded_params = _recorded(sql, first, raw_cursor, binding)
            prior = hook.prior(driver_conn, text, recorded_params, binding)
            result = execute(sql, params, many, context)
            source, function = calling_line()
            hook.emit(
                CapturedStatement(
                    sql=text,
                    params=recorded_params,
                    source=source,
                    function=function,
                    via="django",
                    executions=max(len(params), 1) if many else 1,
                    binding=binding,
                    database=conninfo_of(driver_conn),
                    connection=_weak(driver_conn),
                    prior=prior,
                )
            )
            return result

        stack = ExitStack()
        stack.enter_context(connection.execute_wrapper(wrapper))
        return stack.close

    return install


# --- the public entry point ------------------------------------------------------------------------


def _is_django(target: Any) -> bool:
    return type(target).__module__.startswith("django.") and hasattr(target, "execute_wrapper")


def _installer(target: Any) -> tuple[object, Callable[[_Hook], Callable[[], None]]]:
    if isinstance(target, (psycopg.Connection, psycopg.AsyncConnection)):
        return target, _install_psycopg(target)
    module = type(target).__module__
    if module.startswith("sqlalchemy."):
        bind = _sqlalchemy_bind(target)
        return bind, _install_sqlalchemy(bind)
    if _is_django(target):
        connection = _django_connection(target)
        return connection, _install_django(connection)
    raise TypeError(
        f"cannot capture a {module}.{type(target).__qualname__}; pass a psycopg Connection, a SQLAlchemy "
        "Engine/Connection/Session or a Django connection (in async code: a psycopg AsyncConnection, a SQLAlchemy "
        "AsyncEngine/AsyncConnection/AsyncSession)"
    )


class CaptureBlock:
    """One capture block: `with capture(target) as captured:`, or `async with` in async code (the
    same block: entering and leaving it never waits)."""

    def __init__(self, target: object, also: Sequence[Capture]) -> None:
        self._key, self._install = _installer(target)
        self._sinks = (Capture(), *also)
        self._open: AbstractContextManager[None] | None = None

    def __enter__(self) -> Capture:
        if self._open is not None:
            raise RuntimeError("this capture block is already open; call capture(target) again for another")
        hooked = _hooked(self._key, self._install, self._sinks)
        hooked.__enter__()
        self._open = hooked
        return self._sinks[0]

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None) -> None:
        hooked, self._open = self._open, None
        if hooked is not None:
            hooked.__exit__(kind, error, trace)

    async def __aenter__(self) -> Capture:
        return self.__enter__()

    async def __aexit__(self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None) -> None:
        self.__exit__(kind, error, trace)


def capture(target: object, *also: Capture) -> CaptureBlock:
    """Record the statements `target` runs inside the block; the block yields its own `Capture`.

    `with capture(target) as captured:`, also in async code; `async with` works too. Each statement
    is also recorded into every `Capture` in `also` (the pytest plugin passes the test's), once
    however deeply captures of the same target are nested.
    """
    return CaptureBlock(target, also)
