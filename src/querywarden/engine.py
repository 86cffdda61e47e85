"""The engine under the CLI and the plugin: measure statements, replay changed SQL, judge, confirm
verdicts that rest on timing alone, and decide which baselines a refresh rewrites.

The CLI feeds it the queries of a catalog, the plugin the statements a test captured; both present
what it returns. Data flows one way: statements in, outcomes and verdicts out.

Reads are measured in READ ONLY transactions on the database they ran on, all of one database on one
connection. Writes (and reads that turn out to write) are measured each on a throwaway clone, so a
rolled-back INSERT or UPDATE can leave no sequence advance, heap growth or index split behind that
would skew a later measurement. A read whose SQL differs from its baseline's is also replayed against
the baseline's SQL on the same connection, interleaved, so its timing verdict does not depend on the
machine's speed.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field, replace
from typing import Any, Literal, TypeVar

import psycopg

from .baseline import BaselineStore
from .database import Server, connect, dbname_of, mask_dsn
from .errors import CatalogError, ConfigError, DatabaseError, QuerywardenError, ReadOnlyViolation, RunTimeExceeded
from .fingerprint import identify
from .judge import NEW_BASIS, ab_basis, against_base, baseline_basis, compare, keeps, stored_basis, timing_only
from .measure import (
    Paired, Side, calibration_probe, check_baseline_sql, check_measurable, hosted_session, measure, measure_pair,
    prepare_session, replay_against,
)
from .observation import Observation, Outcome, Unmeasured
from .policy import MeasureSettings, Policy
from .query import Binding, GuardedQuery
from .sandbox import IN_PLACE_FIX, MeasuringRole, SandboxError, as_role, grant, logged_in, measuring_role
from .seeding.seed import Seed, ensure_migrated_template, ensure_template
from .timing_stats import TimingComparison
from .verdict import QueryResult, Verdict

Progress = Callable[[str], None]
Probe = Callable[[psycopg.Connection[Any]], "float | None"]
Errors = Literal["raise", "record"]
_T = TypeVar("_T")

_CURSORS: Mapping[str, type[Any]] = {"server": psycopg.Cursor, "client": psycopg.ClientCursor, "raw": psycopg.RawCursor}
_LOCK_TIMEOUT = "2s"


def _quiet(_: str) -> None:
    pass


def no_probe(_: psycopg.Connection[Any]) -> float | None:
    return None


@dataclass(frozen=True)
class Statement:
    """One statement to measure and judge: what it is, the database it ran on, what it is compared with.

    `query.calls_per_minute` counts executions, so a statement a code path runs `executions` times
    per call is weighted by all of them.
    """

    query: GuardedQuery
    database: str
    baseline: Observation | None = None
    executions: int = 1
    binding: Binding = "server"
    replay: bool = True  # False: judged against the baseline's stored timing only, never replayed
    # Measured already, inside the test's open transaction just before it ran there (see
    # `measure_in_transaction`): that state is gone now, so it is neither measured again nor replayed.
    measured: Outcome | None = field(default=None, compare=False, repr=False)
    base: BaseSide | None = None  # measured against the base revision in the same run, interleaved


@dataclass(frozen=True)
class BaseSide:
    """The base revision's side of a statement: its version of the query (None: the base has no such
    query, so the head's is new) and the database built from the base's schema and seed."""

    query: GuardedQuery | None
    database: str
    revision: str  # shown in verdicts: what the timing was compared with


@dataclass(frozen=True)
class Site:
    """Where the engine measures: the server, the database each database's writes are cloned from,
    and what baselines record about each database's data (its seed fingerprint).

    With `writes_in_place`, a write that cannot run on a clone (it refers to rows the test created)
    is measured on its own database, rolled back, under a short lock timeout.
    """

    server: Server | None
    clone_for_writes: Mapping[str, str] = field(default_factory=dict)
    environment: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    writes_in_place: bool = False
    role: MeasuringRole | None = None  # None: as the DSN's user (measure-in-place)

    def login(self, dsn: str) -> str:
        """The DSN to measure on `dsn`'s database with: as the restricted role, granted that database."""
        if self.role is None or self.server is None:
            return dsn
        grant(self.server, dbname_of(dsn), self.role)
        return as_role(dsn, self.role)

    def clone_source(self, database: str) -> str | None:
        return self.clone_for_writes.get(dbname_of(database)) if database else None

    def extras(self, database: str) -> dict[str, str]:
        return dict(self.environment.get(dbname_of(database), {})) if database else {}


@dataclass(frozen=True)
class Measurements:
    """What the engine measured: an outcome per statement, and same-run replays by position; with a
    base revision, its observations (the `before` of each verdict) and why it could not run others."""

    outcomes: tuple[Outcome, ...]
    replays: Mapping[int, TimingComparison]
    bases: Mapping[int, Observation] = field(default_factory=dict)
    base_errors: Mapping[int, str] = field(default_factory=dict)
    loose: frozenset[int] = frozenset()  # A/Bs timed on two backends that could not share one core


@dataclass(frozen=True)
class Evaluation:
    """Measured and judged statements, after timing-only verdicts were confirmed."""

    statements: tuple[Statement, ...]
    outcomes: tuple[Outcome, ...]
    replays: Mapping[int, TimingComparison]
    results: tuple[QueryResult, ...]
    confirmed: Mapping[int, QueryResult] = field(default_factory=dict)  # first verdicts of re-measured statements
    measured: Measurements | None = None  # everything measured, the base revision's side included


def deadline_for(settings: MeasureSettings) -> float | None:
    """The monotonic time a run capped by `max_run_s` must end by (None: no cap)."""
    return time.monotonic() + settings.max_run_s if settings.max_run_s > 0 else None


def _out_of_time(deadline: float | None) -> bool:
    return deadline is not None and time.monotonic() >= deadline


def _bounded(settings: MeasureSettings, deadline: float | None) -> MeasureSettings:
    """The settings, with a statement timeout that cannot run past the run's deadline."""
    if deadline is None:
        return settings
    left_ms = int((deadline - time.monotonic()) * 1000)
    if left_ms >= settings.statement_timeout_ms:
        return settings
    return replace(settings, statement_timeout_ms=max(left_ms, 1))


def _cut_by_cap(outcome: Outcome, bounded: MeasureSettings, settings: MeasureSettings, deadline: float | None) -> bool:
    """Whether a statement that did not finish was stopped by the run's cap, not by its own timeout: the
    deadline has passed, or the timeout it ran under was the cap's, shorter than the configured one
    (the server's timer can fire a hair before this process's clock reaches the deadline)."""
    if not isinstance(outcome, Unmeasured):
        return False
    return _out_of_time(deadline) or (outcome.timed_out and bounded.statement_timeout_ms < settings.statement_timeout_ms)


def _not_measured(settings: MeasureSettings, statements: Sequence[Statement], done: Mapping[int, object]) -> RunTimeExceeded:
    left = [s.query.name for i, s in enumerate(statements) if i not in done]
    shown = ", ".join(left[:20]) + (f" and {len(left) - 20} more" if len(left) > 20 else "")
    return RunTimeExceeded(
        f"the run reached its time cap of {settings.max_run_s:g} s (--max-run-time / max-run-seconds) "
        f"with {len(left)} of {len(statements)} queries not measured: {shown}; "
        "raise the cap or guard fewer queries (a run that did not measure every query gives no verdict)"
    )


@contextmanager
def _connection_kept(what: str) -> Iterator[None]:
    """Turn a connection lost outside a measurement (session set-up, probe) into an error saying when."""
    try:
        yield
    except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
        lines = str(exc).strip().splitlines()
        raise DatabaseError(
            f"lost the database connection {what}: {lines[0] if lines else type(exc).__name__}; "
            "check that the server is up and re-run"
        ) from None


@dataclass
class _Session:
    conn: psycopg.Connection[Any]
    environment: dict[str, str]
    probe_ms: float | None


@contextmanager
def _session(
    dsn: str, statement: Statement, site: Site, settings: MeasureSettings, probe: Probe, *, lock_timeout: bool = False
) -> Iterator[_Session]:
    """A connection prepared for measuring, with the environment baselines record and the machine probe."""
    with connect(site.login(dsn), cursor_factory=_CURSORS.get(statement.binding, psycopg.Cursor)) as conn:
        with _connection_kept(f"while preparing to measure query {statement.query.name!r}"):
            environment = {**prepare_session(conn, settings), **site.extras(statement.database)}
            if lock_timeout:
                conn.execute("SELECT set_config('lock_timeout', %s, false)", (_LOCK_TIMEOUT,))
            probe_ms = probe(conn)
        yield _Session(conn, environment, probe_ms)


def _unmeasured(statement: Statement, exc: QuerywardenError) -> Unmeasured:
    query = statement.query
    return Unmeasured(query.name, mask_dsn(str(exc)), query.sql, query.calls_per_minute)


def _measure_write(
    statement: Statement, site: Site, settings: MeasureSettings, probe: Probe, read_only: bool | None
) -> Outcome:
    """On a throwaway clone; with `site.writes_in_place`, falling back to the statement's own database."""
    source = site.clone_source(statement.database)
    first_error: QuerywardenError | None = None
    if source is not None and site.server is not None:
        try:
            with site.server.clone(source, prefix="qw_write", wait_s=5.0) as dsn, _session(dsn, statement, site, settings, probe) as session:
                return measure(session.conn, statement.query, settings, session.environment, read_only=read_only, probe_ms=session.probe_ms)
        except QuerywardenError as exc:
            if not site.writes_in_place:
                raise
            first_error = exc  # e.g. it refers to rows the test created: try the test's own database
    elif not site.writes_in_place:
        raise DatabaseError(
            f"query {statement.query.name!r} writes, and there is no database to clone for measuring it; "
            "writes are measured only on throwaway clones"
        )
    try:
        with _session(statement.database, statement, site, settings, probe, lock_timeout=True) as session:
            return measure(session.conn, statement.query, settings, session.environment, read_only=read_only, probe_ms=session.probe_ms)
    except QuerywardenError as exc:
        if "lock timeout" in str(exc):
            raise DatabaseError(
                f"{mask_dsn(str(exc))}; the test's own transaction still holds locks on these rows: commit or "
                "roll back before the capture block ends"
            ) from None
        if first_error is not None:
            raise type(exc)(f"{mask_dsn(str(first_error))}; on the test's own database: {mask_dsn(str(exc))}") from None
        raise


class _SharedClones:
    """One throwaway clone per source database for all the writes of a run measured against a base:
    every execution is rolled back, and the clone is vacuumed after each write, so a rolled-back
    INSERT's dead rows do not pile up for the next; both sides see the same sequence of writes."""

    def __init__(self, server: Server, stack: ExitStack) -> None:
        self.server, self.stack, self.clones = server, stack, dict[str, str]()

    def of(self, source: str) -> str:
        if source not in self.clones:
            self.clones[source] = self.stack.enter_context(self.server.clone(source, prefix="qw_write", wait_s=5.0))
        return self.clones[source]

    def tidy(self) -> None:
        for dsn in self.clones.values():
            with connect(dsn, autocommit=True) as conn, _connection_kept("while vacuuming a write clone"):
                conn.execute("VACUUM (INDEX_CLEANUP AUTO)")


def _measure_write_pair(
    statement: Statement, site: Site, settings: MeasureSettings, probe: Probe, read_only: bool | None, clones: _SharedClones
) -> Paired:
    """A write and the base revision's version of it, each on a clone of its own revision's database,
    timed interleaved (`measure_pair`)."""
    base = statement.base
    assert base is not None and base.query is not None
    head_source, base_source = site.clone_source(statement.database), site.clone_source(base.database)
    if head_source is None or base_source is None:
        raise DatabaseError(
            f"query {statement.query.name!r} writes, and there is no database to clone for measuring it; "
            "writes are measured only on throwaway clones"
        )
    on_base = replace(statement, database=base.database)
    try:
        with ExitStack() as stack:
            head = stack.enter_context(_session(clones.of(head_source), statement, site, settings, probe))
            before = head
            if base_source != head_source:  # one connection when both revisions build the same database
                before = stack.enter_context(_session(clones.of(base_source), on_base, site, settings, no_probe))
            return measure_pair(
                Side(before.conn, base.query, before.environment, read_only, before.probe_ms),
                Side(head.conn, statement.query, head.environment, read_only, head.probe_ms),
                settings,
            )
    finally:
        clones.tidy()


def measure_in_transaction(
    conn: psycopg.Connection[Any], query: GuardedQuery, binding: Binding, settings: MeasureSettings, probe: Probe = no_probe
) -> Outcome:
    """Measure `query` on the test's own connection inside its open transaction, just before the test
    runs it there: on exactly the rows it is about to see, the test's uncommitted ones included.

    Everything runs under savepoints rolled back to (`hosted_session`), so the test's transaction
    goes on as the test left it. A read that writes is measured as the write it is; an error is an
    `Unmeasured` outcome, which fails the test.

    That state is gone once the statement runs, so a timing-only slowdown cannot be measured again
    after the test to confirm it (as `evaluate` does elsewhere): it is timed twice here instead, the
    quicker of the two standing, so one burst of load on a shared machine does not decide alone.
    """
    cursor = _CURSORS.get(binding, psycopg.Cursor)
    try:
        with _connection_kept("inside the test's open transaction"), hosted_session(conn, settings, cursor) as environment:
            recorded = {**environment, "measured_in": "test transaction"}
            probe_ms = probe(conn)
            read_only: bool | None = None  # by the statement's kind, unless it turns out to write
            try:
                first = measure(conn, query, settings, recorded, probe_ms=probe_ms)
            except ReadOnlyViolation:
                read_only = False
                first = measure(conn, query, settings, recorded, read_only=False, probe_ms=probe_ms)
            if not isinstance(first, Observation):
                return first
            again = measure(conn, query, settings, recorded, read_only=read_only, probe_ms=probe_ms)
            if isinstance(again, Observation) and again.timing.median_ms < first.timing.median_ms:
                return replace(first, timing=again.timing)
            return first
    except QuerywardenError as exc:
        return Unmeasured(query.name, mask_dsn(str(exc)), query.sql, query.calls_per_minute)


def refuse_unsafe(statements: Sequence[Statement]) -> None:
    """Refuse what cannot be measured and rolled back, in the statements and in the baseline SQL a
    replay would run, before any database is touched (a CatalogError naming the first)."""
    for statement in statements:
        check_measurable(statement.query)
        if statement.baseline is not None and statement.replay:
            check_baseline_sql(statement.query.name, statement.baseline.sql)
        if statement.base is not None and statement.base.query is not None:
            try:
                check_measurable(statement.base.query)
            except CatalogError as exc:
                raise CatalogError(f"the base revision's {exc}") from None


def measure_all(
    statements: Sequence[Statement],
    site: Site,
    settings: MeasureSettings,
    *,
    probe: Probe = calibration_probe,
    progress: Progress = _quiet,
    deadline: float | None = None,
    errors: Errors = "raise",
) -> Measurements:
    """Measure every statement once: reads of one database on one connection, each write on a clone.

    With `errors="raise"` the first statement that cannot be measured stops the run (the CLI: exit 2);
    with `"record"` it becomes an `Unmeasured` outcome and the rest is measured (the plugin: the test
    fails naming it). A timeout is always an outcome: a runaway query is a verdict.
    """
    refuse_unsafe(statements)
    outcomes: dict[int, Outcome] = {}
    replays: dict[int, TimingComparison] = {}
    bases: dict[int, Observation] = {}
    base_errors: dict[int, str] = {}
    loose: set[int] = set()
    writes: list[tuple[int, bool | None]] = []
    reads: dict[tuple[str, str], list[int]] = {}
    for position, statement in enumerate(statements):
        query = statement.query
        if isinstance(statement.measured, Observation):
            environment = {**site.extras(statement.database), **statement.measured.environment}
            outcomes[position] = replace(
                statement.measured, name=query.name, calls_per_minute=query.calls_per_minute, environment=environment
            )
        elif statement.measured is not None:
            outcomes[position] = replace(statement.measured, name=query.name, calls_per_minute=query.calls_per_minute)
        elif not statement.database:
            outcomes[position] = Unmeasured(query.name, "cannot tell which database it ran on", query.sql, query.calls_per_minute)
        elif identify(statement.query.sql).kind == "read":
            reads.setdefault((statement.database, statement.binding), []).append(position)
        else:
            writes.append((position, None))

    def settle(position: int, exc: QuerywardenError) -> None:
        if errors == "raise":
            raise exc
        outcomes[position] = _unmeasured(statements[position], exc)

    for members in reads.values():
        first = statements[members[0]]
        try:
            with _session(first.database, first, site, settings, probe) as session, ExitStack() as opened:
                base_sessions: dict[str, _Session] = {}

                def base_session(statement: Statement) -> _Session:
                    """The base's connection: the head's own when both revisions build the same database,
                    since two backends answer the same statement ×1.5 apart for sub-millisecond queries
                    (each sits on its own core and wakes at its own latency), one backend never does."""
                    assert statement.base is not None
                    where = statement.base.database
                    if where == first.database:
                        return session
                    if where not in base_sessions:
                        on_base = replace(statement, database=where)
                        base_sessions[where] = opened.enter_context(_session(where, on_base, site, settings, probe))
                    return base_sessions[where]

                for position in members:
                    statement = statements[position]
                    query = statement.query
                    if _out_of_time(deadline):
                        raise _not_measured(settings, statements, outcomes)
                    now = _bounded(settings, deadline)
                    if now is not settings:
                        with _connection_kept(f"before measuring query {query.name!r}"):
                            session.conn.execute("SELECT set_config('statement_timeout', %s, false)", (f"{now.statement_timeout_ms}ms",))
                    progress(f"measuring {query.name}" + (" against the base revision" if _paired(statement) else ""))
                    try:
                        if _paired(statement):
                            assert statement.base is not None and statement.base.query is not None
                            before_session = base_session(statement)
                            paired = measure_pair(
                                Side(before_session.conn, statement.base.query, before_session.environment, probe_ms=before_session.probe_ms),
                                Side(session.conn, query, session.environment, probe_ms=session.probe_ms),
                                now,
                            )
                            _keep_pair(position, paired, bases, base_errors, replays, loose)
                            outcome = paired.head
                        else:
                            outcome = measure(session.conn, query, now, session.environment, probe_ms=session.probe_ms)
                    except ReadOnlyViolation:
                        writes.append((position, False))
                        continue
                    except RunTimeExceeded:
                        raise
                    except QuerywardenError as exc:
                        settle(position, exc)
                        continue
                    if _cut_by_cap(outcome, now, settings, deadline):
                        raise _not_measured(settings, statements, outcomes)  # cut by the cap, not a verdict
                    outcomes[position] = outcome
                    before = statement.baseline
                    if (
                        statement.base is None and statement.replay and isinstance(outcome, Observation)
                        and before is not None and before.fingerprint != outcome.fingerprint
                    ):
                        progress(f"replaying the baseline SQL of {query.name} against the new SQL")
                        try:
                            replay = replay_against(session.conn, before.sql, query, settings)
                        except QuerywardenError as exc:
                            settle(position, exc)  # a baseline that cannot be replayed safely is no verdict
                            continue
                        if replay is not None:
                            replays[position] = replay
        except RunTimeExceeded:
            raise
        except QuerywardenError as exc:
            if errors == "raise":
                raise
            for position in members:
                if position not in outcomes and all(position != w for w, _ in writes):
                    outcomes[position] = _unmeasured(statements[position], exc)
    with ExitStack() as stack:
        shared = _SharedClones(site.server, stack) if site.server is not None else None
        for position, read_only in writes:
            statement = statements[position]
            if _out_of_time(deadline):
                raise _not_measured(settings, statements, outcomes)
            progress(f"measuring {statement.query.name} (on a throwaway clone)")
            now = _bounded(settings, deadline)
            try:
                if _paired(statement) and shared is not None:
                    paired = _measure_write_pair(statement, site, now, probe, read_only, shared)
                    _keep_pair(position, paired, bases, base_errors, replays, loose)
                    outcome = paired.head
                else:
                    outcome = _measure_write(statement, site, now, probe, read_only)
            except QuerywardenError as exc:
                settle(position, exc)
                continue
            if _cut_by_cap(outcome, now, settings, deadline):
                raise _not_measured(settings, statements, outcomes)
            outcomes[position] = outcome
    ordered: list[Outcome] = []
    for position, statement in enumerate(statements):
        found = outcomes[position]
        ordered.append(replace(found, statement_count=statement.executions) if isinstance(found, Observation) else found)
        if position in bases:  # replayed as often as the head issued it
            bases[position] = replace(bases[position], statement_count=statement.executions)
    return Measurements(tuple(ordered), replays, bases, base_errors, frozenset(loose))


def _paired(statement: Statement) -> bool:
    """Whether the statement is measured against the base revision's version of it."""
    return statement.base is not None and statement.base.query is not None and statement.measured is None


def _keep_pair(
    position: int, paired: Paired, bases: dict[int, Observation], base_errors: dict[int, str],
    replays: dict[int, TimingComparison], loose: set[int],
) -> None:
    if isinstance(paired.base, Observation):
        bases[position] = paired.base
        if not paired.timed_alike:
            loose.add(position)
        if paired.comparison is not None:
            replays[position] = paired.comparison
    elif paired.base_error is not None:
        base_errors[position] = mask_dsn(paired.base_error)


def judge_all(statements: Sequence[Statement], measured: Measurements, policy: Policy) -> tuple[QueryResult, ...]:
    """Each statement's verdict, against the base revision's measurement of this run when there is
    one, else against its stored baseline; each says which it rests on (`QueryResult.basis`)."""
    return tuple(_judge(position, s, outcome, measured, policy) for position, (s, outcome) in enumerate(zip(statements, measured.outcomes)))


def _judge(position: int, statement: Statement, outcome: Outcome, measured: Measurements, policy: Policy) -> QueryResult:
    query, baseline, replay = statement.query, statement.baseline, measured.replays.get(position)
    base = statement.base
    if base is None:
        result = compare(query.name, baseline, outcome, policy, query.source, replay)
        if baseline is None:
            return replace(result, basis=NEW_BASIS)
        return replace(result, basis=baseline_basis(replay is not None))
    accepted = baseline is not None and baseline.accepted is not None
    before = measured.bases.get(position)
    if before is not None and not accepted:
        before, notes = against_base(before, outcome)
        loose = position in measured.loose
        result = compare(query.name, before, outcome, policy, query.source, replay, against=f"the base revision {base.revision}",
                         loose=loose)
        return replace(result, reasons=result.reasons + notes, basis=ab_basis(base.revision, loose))
    why = measured.base_errors.get(position)
    if baseline is None or (base.query is None and not accepted):
        result = compare(query.name, None, outcome, policy, query.source)
        said = f"the base revision {base.revision} could not run it ({why})" if why else f"not in the base revision {base.revision}"
        return replace(result, basis=f"new: {said}; judged on its own cost at its call rate")
    result = compare(query.name, baseline, outcome, policy, query.source, stored_timing=False)
    if accepted:
        said = f"its baseline records an accepted cost ({baseline.accepted})"
    elif why:
        said = f"the base revision {base.revision} could not run it ({why})"
    else:
        said = "it was measured inside the test's transaction, which cannot be replayed on the base"
    return replace(result, basis=stored_basis(said))


def evaluate(
    statements: Sequence[Statement],
    site: Site,
    settings: MeasureSettings,
    policy: Policy,
    *,
    confirm_warns: bool = True,
    probe: Probe = calibration_probe,
    progress: Progress = _quiet,
    deadline: float | None = None,
    errors: Errors = "raise",
) -> Evaluation:
    """Measure and judge; a verdict that blocks (or, with `confirm_warns`, warns) on timing alone is
    measured once more, the machine probed afresh, and the second measurement decides.

    A real slowdown shows twice; a burst of load on a shared machine rarely does. Seen in the
    detection benchmark: 4 of 50 unchanged runs blocked, and 7 of 50 warned, on one query's timing
    while the rest of the catalog, measured minutes apart, sat at ×1.0. A refresh confirms blocks
    only (`confirm_warns=False`): a warn does not change what it writes.
    """
    statements = tuple(statements)
    measured = measure_all(statements, site, settings, probe=probe, progress=progress, deadline=deadline, errors=errors)
    results = judge_all(statements, measured, policy)
    suspects = timing_only(results, policy, warns=confirm_warns)
    confirmed = {position: results[position] for position in suspects}
    if suspects:
        progress(f"confirming timing-only slowdowns by measuring again: {', '.join(statements[i].query.name for i in suspects)}")
        again = measure_all(
            [statements[i] for i in suspects], site, settings, probe=calibration_probe, progress=progress, deadline=deadline, errors=errors
        )
        outcomes = list(measured.outcomes)
        for offset, position in enumerate(suspects):
            outcomes[position] = again.outcomes[offset]
        # a same-run A/B is run again too: the new one decides
        measured = Measurements(
            tuple(outcomes),
            _remeasured(measured.replays, again.replays, suspects),
            _remeasured(measured.bases, again.bases, suspects),
            _remeasured(measured.base_errors, again.base_errors, suspects),
            frozenset(p for p in measured.loose if p not in suspects) | {suspects[offset] for offset in again.loose},
        )
        results = judge_all(statements, measured, policy)
    return Evaluation(statements, measured.outcomes, measured.replays, results, confirmed, measured)


def _remeasured(first: Mapping[int, _T], again: Mapping[int, _T], positions: Sequence[int]) -> dict[int, _T]:
    """`first` by position, with what the second measurement of `positions` found instead."""
    merged = {position: value for position, value in first.items() if position not in positions}
    merged.update({positions[offset]: value for offset, value in again.items()})
    return merged


@dataclass(frozen=True)
class Refreshed:
    """What a refresh did with one query's baseline file."""

    name: str
    status: Literal["written", "unchanged", "failed", "refused"]
    detail: str = ""


def launders(result: QueryResult) -> bool:
    """Whether recording this verdict would turn a regression, or a new query over the budget, into the
    baseline that later checks pass against."""
    return result.blocking and result.verdict in (Verdict.FAIL, Verdict.NEW)


def acceptance(given: str | None, previous: Observation | None, blocking: bool) -> str | None:
    """The reason a recorded baseline carries: the one given now, else the one it had, kept while the
    query does not regress (an accepted cost stays in sight of every later review)."""
    if given is not None:
        return given
    return previous.accepted if previous is not None and not blocking else None


def refresh(evaluation: Evaluation, store: BaselineStore, accepted: Mapping[str, str] | None = None) -> list[Refreshed]:
    """Record the evaluated queries' baselines: rewrite a file only when more than timing changed or its
    verdict blocks (`judge.keeps`), so timing noise never churns a diff; nothing for an unmeasured one.

    A query whose verdict blocks on its cost is refused (recording never launders a regression) unless
    `accepted` names it with a reason, which the baseline then carries for reviewers to see.
    """
    accepted = accepted or {}
    done: list[Refreshed] = []
    for statement, outcome, result in zip(evaluation.statements, evaluation.outcomes, evaluation.results):
        if isinstance(outcome, Unmeasured):
            done.append(Refreshed(outcome.name, "failed", outcome.message))
            continue
        reason = accepted.get(outcome.name)
        if reason is None and launders(result):
            done.append(Refreshed(outcome.name, "refused", result.reasons[0] if result.reasons else result.verdict.value))
            continue
        recorded = replace(outcome, accepted=acceptance(reason, statement.baseline, result.blocking))
        if keeps(statement.baseline, recorded, blocking=result.blocking) or not store.write(recorded):
            done.append(Refreshed(outcome.name, "unchanged"))
        else:
            done.append(Refreshed(outcome.name, "written", str(store.path_for(outcome.name))))
    return done


# --- catalogs: the CLI's input --------------------------------------------------------------------


@dataclass(frozen=True)
class CatalogSite:
    """Where a catalog is measured: the site, the database its reads run on and, in a run against a
    base revision, the database built from that revision's schema and seed."""

    site: Site
    database: str
    base_database: str | None = None
    base_revision: str = ""

    def statements(
        self,
        queries: Sequence[GuardedQuery],
        baselines: Mapping[str, Observation],
        base_queries: Mapping[str, GuardedQuery] | None = None,
    ) -> list[Statement]:
        """The queries to measure; with a base database, each against `base_queries`' query of its name."""
        if self.base_database is None:
            return [Statement(query, self.database, baselines.get(query.name)) for query in queries]
        known = base_queries or {}
        return [
            Statement(query, self.database, baselines.get(query.name),
                      base=BaseSide(known.get(query.name), self.base_database, self.base_revision))
            for query in queries
        ]


def database_site(server: Server, dbname: str, seed_fingerprint: str | None = None, role: MeasuringRole | None = None) -> CatalogSite:
    """A database querywarden made (a clone, a scratch database): reads on it, writes on clones of it."""
    extras = {dbname: {"seed": seed_fingerprint}} if seed_fingerprint else {}
    return CatalogSite(Site(server, {dbname: dbname}, extras, role=role), server.dsn_for(dbname))


def _maintenance(server: Server) -> Server:
    """The server administered through its `postgres` database where there is one: an admin session
    on the DSN's own database would stop every other run from cloning it."""
    if dbname_of(server.dsn) != "postgres" and server.exists("postgres"):
        return Server(server.dsn_for("postgres"))
    return server


def data_fingerprint(server: Server, dbname: str) -> str:
    """What data a database holds, for baselines measured without a seed: each table's size on disk in
    half-decades of pages, hashed. An empty copy of the schema (a CI service container with migrations
    and no rows) then reads as other data, so its verdicts are `incomparable`, never an improvement."""
    with connect(server.dsn_for(dbname), autocommit=True) as conn:
        rows = conn.execute(
            "SELECT n.nspname, c.relname, pg_relation_size(c.oid) / current_setting('block_size')::int "
            "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE c.relkind IN ('r', 'm') AND n.nspname !~ '^pg_' AND n.nspname <> 'information_schema' "
            "ORDER BY 1, 2"
        ).fetchall()
    sizes = ";".join(f"{schema}.{table}:{round(math.log10(pages) * 2) + 1 if pages else 0}" for schema, table, pages in rows)
    return hashlib.sha256(sizes.encode("utf-8")).hexdigest()[:12]


@contextmanager
def open_catalog_site(
    dsn: str,
    seed: Seed | None,
    progress: Progress = _quiet,
    *,
    in_place: bool = False,
    base_seed: Seed | None = None,
    base_revision: str = "",
) -> Iterator[CatalogSite]:
    """Where a catalog is measured: a clone of the seeded template when a seed is given (a template must
    stay connection-free), else a clone of the DSN's database; always as a restricted role (sandbox.py).

    With `base_seed` (a run against a base revision) the base revision's template is built or reused
    too, and cloned beside the head's: the main branch's own runs build that template, so it is
    usually there already. When the head only adds migrations, its template is a copy of the base's
    with them applied (`ensure_migrated_template`), not a whole build. When both seeds build the same
    template, one clone serves both sides.

    Only `in_place` measures on the DSN's own database as the DSN's user, for a server where neither
    a clone nor the role can be had; the shell says the risk when it is enabled.
    """
    server = _maintenance(Server(dsn))
    if base_seed is not None and (seed is None or in_place):
        raise ConfigError(
            "a run against a base revision builds both revisions' databases from their schema and seed: "
            "set `seed` (and `schema`) in [tool.querywarden], and do not measure in place"
        )
    if in_place:
        source = dbname_of(dsn)
        extras = {"data": data_fingerprint(server, source)} if seed is None else seed.environment()
        yield CatalogSite(Site(server, {source: source}, {source: extras}), dsn)
        return
    base_source = ensure_template(server, base_seed, progress) if base_seed is not None else None
    migrated = ensure_migrated_template(server, base_seed, seed, progress) if base_seed is not None and seed is not None else None
    source = dbname_of(dsn) if seed is None else migrated or ensure_template(server, seed, progress)
    with measuring_role(server) as role, ExitStack() as stack:
        try:
            read_dsn = stack.enter_context(server.clone(source, wait_s=5.0))  # another run may be cloning it too
        except DatabaseError as exc:
            if seed is not None:
                raise
            raise SandboxError(
                f"{exc}; or give a seed (--seed/--schema) so querywarden builds its own database, {IN_PLACE_FIX}"
            ) from None
        read_name = dbname_of(read_dsn)
        # Read on the clone: a session on the source, even a brief one, stops another run's clone.
        extras = {"data": data_fingerprint(server, read_name)} if seed is None else seed.environment()
        grant(server, read_name, role)
        stack.enter_context(logged_in(read_dsn, role))  # held, so a prune never takes the clone mid-run
        clones, environments = {read_name: source}, {read_name: extras}
        base_dsn: str | None = None
        if base_seed is not None and base_source is not None:
            base_dsn = read_dsn
            if base_source != source:
                base_dsn = stack.enter_context(server.clone(base_source, wait_s=5.0))
                grant(server, dbname_of(base_dsn), role)
                stack.enter_context(logged_in(base_dsn, role))
            clones[dbname_of(base_dsn)] = base_source
            environments[dbname_of(base_dsn)] = base_seed.environment()
        yield CatalogSite(Site(server, clones, environments, role=role), read_dsn, base_dsn, base_revision)
