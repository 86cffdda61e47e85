"""Running a catalog: measure every query, compare with the baselines, or record new baselines.

Reads are measured in READ ONLY transactions on the database under test. Writes (and reads that turn
out to write) are measured each on a throwaway clone, so a rolled-back INSERT or UPDATE can leave no
sequence advance, heap growth or index split behind that would skew a later measurement.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from .baseline import BaselineStore, observation_to_dict
from .compare import Policy, compare
from .database import Server, connect, dbname_of, with_dbname
from .fingerprint import identify
from .measure import MeasureFailure, MeasureSettings, ReadOnlyViolation, measure, prepare_session
from .observation import Observation
from .query import GuardedQuery
from .seed import Seed, ensure_template
from .verdict import QueryResult, RunResult, Verdict

Progress = Callable[[str], None]
Outcome = Observation | MeasureFailure


def _quiet(_: str) -> None:
    pass


@dataclass(frozen=True)
class Target:
    """Where to measure: a server and the database whose data the queries see."""

    server: Server
    dbname: str
    is_template: bool = False


@contextmanager
def open_target(dsn: str, seed: Seed | None, progress: Progress = _quiet) -> Iterator[Target]:
    """The database to measure: a clone of the seeded template when a seed is given, else the DSN's database."""
    server = Server(dsn)
    if seed is None:
        yield Target(server, dbname_of(dsn))
        return
    template = ensure_template(server, seed, progress)
    yield Target(server, template, is_template=True)


def _measure_on_clone(
    target: Target, query: GuardedQuery, settings: MeasureSettings, read_only: bool | None
) -> Outcome:
    with target.server.clone(target.dbname, prefix="qw_write") as dsn, connect(dsn) as conn:
        environment = prepare_session(conn, settings)
        return measure(conn, query, settings, environment, read_only=read_only)


def measure_queries(
    target: Target, queries: Sequence[GuardedQuery], settings: MeasureSettings, progress: Progress = _quiet
) -> dict[str, Outcome]:
    """Measure every query; reads share one connection, each write gets its own clone."""
    outcomes: dict[str, Outcome] = {}
    reads = [q for q in queries if identify(q.sql).kind == "read"]
    others = [q for q in queries if q not in reads]
    on_clone: list[tuple[GuardedQuery, bool | None]] = [(q, None) for q in others]
    if reads:
        # Reads of a seeded template are measured on a clone too: a template must stay connection-free.
        with _read_database(target) as dsn, connect(dsn) as conn:
            environment = prepare_session(conn, settings)
            for query in reads:
                progress(f"measuring {query.name}")
                try:
                    outcomes[query.name] = measure(conn, query, settings, environment)
                except ReadOnlyViolation:
                    on_clone.append((query, False))
    for query, read_only in on_clone:
        progress(f"measuring {query.name} (on a throwaway clone)")
        outcomes[query.name] = _measure_on_clone(target, query, settings, read_only)
    return {q.name: outcomes[q.name] for q in queries}


@contextmanager
def _read_database(target: Target) -> Iterator[str]:
    if target.is_template:
        with target.server.clone(target.dbname) as dsn:
            yield dsn
    else:
        yield with_dbname(target.server.dsn, target.dbname)


def check(
    queries: Sequence[GuardedQuery],
    outcomes: dict[str, Outcome],
    store: BaselineStore,
    policy: Policy,
) -> RunResult:
    """Compare each outcome with its baseline; baselines with no query are reported as missing."""
    results: list[QueryResult] = []
    for query in queries:
        results.append(compare(query.name, store.load(query.name), outcomes[query.name], policy, query.source))
    names = {q.name for q in queries}
    for name in store.names():
        if name not in names:
            results.append(compare(name, store.load(name), None, policy))
    return RunResult(tuple(results))


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
    outcomes: dict[str, Outcome],
    store: BaselineStore,
    policy: Policy,
    *,
    prune: bool = False,
) -> list[UpdateOutcome]:
    """Record baselines. A file whose verdict would be `pass` and whose plan is unchanged is left alone."""
    report: list[UpdateOutcome] = []
    for query in queries:
        outcome = outcomes[query.name]
        if isinstance(outcome, MeasureFailure):
            report.append(UpdateOutcome(query.name, "failed", outcome.message))
            continue
        before = store.load(query.name)
        if before is not None and _same_except_timing(before, outcome):
            if compare(query.name, before, outcome, policy).verdict == Verdict.PASS:
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
