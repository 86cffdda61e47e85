"""Running a catalog: measure every query, compare with the baselines, or record new baselines.

Reads are measured in READ ONLY transactions on the database under test. Writes (and reads that turn
out to write) are measured each on a throwaway clone, so a rolled-back INSERT or UPDATE can leave no
sequence advance, heap growth or index split behind that would skew a later measurement.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

import psycopg

from .baseline import BaselineStore, observation_to_dict
from .compare import Policy, compare, flagged_on_timing_alone
from .database import Server, connect, dbname_of, with_dbname
from .errors import DatabaseError, QuerywardenError
from .fingerprint import identify
from .measure import (
    MeasureFailure,
    MeasureSettings,
    ReadOnlyViolation,
    calibration_probe,
    check_measurable,
    measure,
    prepare_session,
    replay_against,
)
from .observation import Observation
from .query import GuardedQuery
from .seed import Seed, ensure_template
from .stats import TimingComparison
from .verdict import QueryResult, RunResult

Progress = Callable[[str], None]
Outcome = Observation | MeasureFailure


def _quiet(_: str) -> None:
    pass


class RunTimeExceeded(QuerywardenError):
    """The whole-run time cap was reached: the queries it names were not measured, so there is no verdict."""


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


def _deadline(settings: MeasureSettings) -> float | None:
    return time.monotonic() + settings.max_run_s if settings.max_run_s > 0 else None


def _bounded(settings: MeasureSettings, deadline: float | None) -> MeasureSettings:
    """The settings, with a statement timeout that cannot run past the run's deadline."""
    if deadline is None:
        return settings
    left_ms = int((deadline - time.monotonic()) * 1000)
    if left_ms >= settings.statement_timeout_ms:
        return settings
    return replace(settings, statement_timeout_ms=max(left_ms, 1))


def _out_of_time(deadline: float | None) -> bool:
    return deadline is not None and time.monotonic() >= deadline


def _not_measured(settings: MeasureSettings, queries: Sequence[GuardedQuery], done: Mapping[str, object]) -> RunTimeExceeded:
    left = [q.name for q in queries if q.name not in done]
    shown = ", ".join(left[:20]) + (f" and {len(left) - 20} more" if len(left) > 20 else "")
    return RunTimeExceeded(
        f"the run reached its time cap of {settings.max_run_s:g} s (--max-run-time / max-run-seconds) "
        f"with {len(left)} of {len(queries)} queries not measured: {shown}; "
        "raise the cap or guard fewer queries (a run that did not measure every query gives no verdict)"
    )


@dataclass(frozen=True)
class Target:
    """Where to measure: a server and the database whose data the queries see."""

    server: Server
    dbname: str
    is_template: bool = False
    seed_fingerprint: str | None = None

    def environment(self, session: Mapping[str, str]) -> dict[str, str]:
        """The session's environment plus the seed's data fingerprint, which baselines must match."""
        found = dict(session)
        if self.seed_fingerprint:
            found["seed"] = self.seed_fingerprint
        return found


@contextmanager
def open_target(dsn: str, seed: Seed | None, progress: Progress = _quiet) -> Iterator[Target]:
    """The database to measure: a clone of the seeded template when a seed is given, else the DSN's database."""
    server = Server(dsn)
    if seed is None:
        yield Target(server, dbname_of(dsn))
        return
    template = ensure_template(server, seed, progress)
    yield Target(server, template, is_template=True, seed_fingerprint=seed.data_fingerprint())


@dataclass
class Measurements:
    """What a run measured: an outcome per query, and same-run replays of changed SQL."""

    outcomes: dict[str, Outcome] = field(default_factory=dict)
    replays: dict[str, TimingComparison] = field(default_factory=dict)


def _measure_on_clone(
    target: Target, query: GuardedQuery, settings: MeasureSettings, read_only: bool | None
) -> Outcome:
    with target.server.clone(target.dbname, prefix="qw_write") as dsn, connect(dsn) as conn:
        with _connection_kept(f"while preparing to measure query {query.name!r}"):
            environment = target.environment(prepare_session(conn, settings))
            probe = calibration_probe(conn)
        return measure(conn, query, settings, environment, read_only=read_only, probe_ms=probe)


def measure_queries(
    target: Target,
    queries: Sequence[GuardedQuery],
    settings: MeasureSettings,
    progress: Progress = _quiet,
    baselines: Mapping[str, Observation] | None = None,
) -> Measurements:
    """Measure every query; reads share one connection, each write gets its own clone.

    A read whose SQL differs from its baseline's is also replayed against the baseline's SQL on the
    same connection (interleaved), so its timing verdict does not depend on the machine's speed.
    """
    baselines = baselines or {}
    for query in queries:
        check_measurable(query)  # refuse what cannot be rolled back before touching the database at all
    deadline = _deadline(settings)
    result = Measurements()
    reads = [q for q in queries if identify(q.sql).kind == "read"]
    others = [q for q in queries if q not in reads]
    on_clone: list[tuple[GuardedQuery, bool | None]] = [(q, None) for q in others]
    if reads:
        # Reads of a seeded template are measured on a clone too: a template must stay connection-free.
        with _read_database(target) as dsn, connect(dsn) as conn:
            with _connection_kept(f"while preparing to measure query {reads[0].name!r}"):
                environment = target.environment(prepare_session(conn, settings))
                probe = calibration_probe(conn)
            for query in reads:
                if _out_of_time(deadline):
                    raise _not_measured(settings, queries, result.outcomes)
                now = _bounded(settings, deadline)
                if now is not settings:
                    with _connection_kept(f"before measuring query {query.name!r}"):
                        conn.execute("SELECT set_config('statement_timeout', %s, false)", (f"{now.statement_timeout_ms}ms",))
                progress(f"measuring {query.name}")
                try:
                    outcome = measure(conn, query, now, environment, probe_ms=probe)
                except ReadOnlyViolation:
                    on_clone.append((query, False))
                    continue
                if isinstance(outcome, MeasureFailure) and _out_of_time(deadline):
                    raise _not_measured(settings, queries, result.outcomes)  # cut by the cap, not a verdict
                result.outcomes[query.name] = outcome
                before = baselines.get(query.name)
                if isinstance(outcome, Observation) and before is not None and before.fingerprint != outcome.fingerprint:
                    progress(f"replaying the baseline SQL of {query.name} against the new SQL")
                    replay = replay_against(conn, before.sql, query, settings)
                    if replay is not None:
                        result.replays[query.name] = replay
    for query, read_only in on_clone:
        if _out_of_time(deadline):
            raise _not_measured(settings, queries, result.outcomes)
        progress(f"measuring {query.name} (on a throwaway clone)")
        outcome = _measure_on_clone(target, query, _bounded(settings, deadline), read_only)
        if isinstance(outcome, MeasureFailure) and _out_of_time(deadline):
            raise _not_measured(settings, queries, result.outcomes)
        result.outcomes[query.name] = outcome
    result.outcomes = {q.name: result.outcomes[q.name] for q in queries}
    return result


@contextmanager
def _read_database(target: Target) -> Iterator[str]:
    if target.is_template:
        with target.server.clone(target.dbname) as dsn:
            yield dsn
    else:
        yield with_dbname(target.server.dsn, target.dbname)


def load_baselines(queries: Sequence[GuardedQuery], store: BaselineStore) -> dict[str, Observation]:
    """Every baseline the queries have, read before measuring so a corrupt file stops the run early."""
    store.names()
    found = {q.name: store.load(q.name) for q in queries}
    return {name: baseline for name, baseline in found.items() if baseline is not None}


def check(
    queries: Sequence[GuardedQuery],
    measured: Measurements,
    store: BaselineStore,
    policy: Policy,
) -> RunResult:
    """Compare each outcome with its baseline; baselines with no query are reported as missing."""
    results: list[QueryResult] = []
    for query in queries:
        results.append(
            compare(
                query.name,
                store.load(query.name),
                measured.outcomes[query.name],
                policy,
                query.source,
                measured.replays.get(query.name),
            )
        )
    names = {q.name for q in queries}
    for name in store.names():
        if name not in names:
            results.append(compare(name, store.load(name), None, policy))
    return RunResult(tuple(results))


def measure_and_check(
    target: Target,
    queries: Sequence[GuardedQuery],
    store: BaselineStore,
    policy: Policy,
    settings: MeasureSettings,
    progress: Progress = _quiet,
) -> RunResult:
    """Measure and compare; a query that blocks or warns on timing alone is measured once more, and
    the second measurement decides.

    A real slowdown shows twice; a burst of load on a shared machine rarely does. Seen in the
    detection benchmark: 4 of 50 unchanged runs blocked, and 7 of 50 warned, on one query's timing
    while the rest of the catalog, measured minutes apart, sat at ×1.0.
    """
    known = load_baselines(queries, store)
    measured = measure_queries(target, queries, settings, progress, known)
    run = check(queries, measured, store, policy)
    suspects = [r.name for r in run.queries if flagged_on_timing_alone(r, policy)]
    if not suspects:
        return run
    progress(f"confirming timing-only slowdowns by measuring again: {', '.join(suspects)}")
    again = measure_queries(target, [q for q in queries if q.name in suspects], settings, progress, known)
    measured.outcomes.update(again.outcomes)
    measured.replays.update(again.replays)
    return check(queries, measured, store, policy)


def _same_except_timing(a: Observation, b: Observation) -> bool:
    first, second = observation_to_dict(a), observation_to_dict(b)
    first.pop("timing")
    second.pop("timing")
    return first == second


@dataclass(frozen=True)
class UpdateOutcome:
    name: str
    status: str  # written | unchanged | removed | failed
    detail: str = ""


def update(
    queries: Sequence[GuardedQuery],
    measured: Measurements,
    store: BaselineStore,
    policy: Policy,
    *,
    prune: bool = False,
) -> list[UpdateOutcome]:
    """Record baselines. A file whose plan and work are unchanged and whose verdict would not block is
    left alone, so timing noise never churns a diff."""
    report: list[UpdateOutcome] = []
    for query in queries:
        outcome = measured.outcomes[query.name]
        if isinstance(outcome, MeasureFailure):
            report.append(UpdateOutcome(query.name, "failed", outcome.message))
            continue
        before = store.load(query.name)
        if before is not None and _same_except_timing(before, outcome):
            # Same plan and work: timing drift that would not block is noise, not news for a diff.
            if not compare(query.name, before, outcome, policy).blocking:
                report.append(UpdateOutcome(query.name, "unchanged"))
                continue
        written = store.write(outcome)
        report.append(UpdateOutcome(query.name, "written" if written else "unchanged", str(store.path_for(query.name))))
    if prune:
        names = {q.name for q in queries}
        stale = [name for name in store.names() if name not in names]
        for path in store.remove(stale):
            report.append(UpdateOutcome(Path(path).stem, "removed", str(path)))
    return report
