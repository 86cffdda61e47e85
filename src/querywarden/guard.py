"""Guarding one test's code path: measure what it ran, compare it with the test's baseline, decide.

The pytest plugin captures every statement a test runs (`capture.py`). After the test body the
statements are grouped by fingerprint, each distinct statement is measured once by the core engine
with the parameters of its first execution, and the path is compared with the test's baseline:

- statements are paired with the baseline's by fingerprint, then leftovers in capture order, so a
  benign rewrite (alias renamed, SQL reformatted) compares with its old self;
- each pair is judged by `compare.compare`, with `statement_count` set to the number of times the
  statement ran, so an N+1 loop over a statement the path already issued reads as slower;
- the path's total statement count is part of its baseline too: more statements than recorded is a
  regression of the path, weighted like any other (blocking on a hot path).

Reads are measured, READ ONLY, on the database the test ran them on (the test's clone, with what the
test wrote); writes on a throwaway clone of the seeded template, so they cannot collide with rows
the test created, and where that fails, on the test's database inside rolled-back transactions.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import psycopg

from .baseline import PathBaseline, PathBaselineStore, observation_to_dict
from .capture import CapturedStatement
from .compare import Policy, compare, flagged_on_timing_alone
from .database import Server, connect, dbname_of, mask_dsn
from .errors import QuerywardenError
from .fingerprint import SqlIdentity, identify
from .measure import (
    MeasureFailure,
    MeasureSettings,
    ReadOnlyViolation,
    calibration_probe,
    measure,
    prepare_session,
    replay_against,
)
from .observation import Observation
from .query import GuardedQuery, SourceLocation
from .stats import TimingComparison
from .verdict import QueryResult, Verdict

UPDATE_FLAG = "--querywarden-update"
Status = Literal["pass", "improved", "warn", "fail", "error", "no-baseline", "written", "unchanged"]
_CURSORS: Mapping[str, type[Any]] = {"server": psycopg.Cursor, "client": psycopg.ClientCursor, "raw": psycopg.RawCursor}
_LOCK_TIMEOUT = "2s"
_SQL_WIDTH = 160
_MAX_SHOWN = 12


@dataclass(frozen=True)
class PathSpec:
    """The guarded test and how it is weighted: by its `hot_path` marker, else the default rate."""

    test: str
    calls_per_minute: float
    budget_ms: float | None = None
    marked: bool = False


@dataclass(frozen=True)
class StatementGroup:
    """One distinct statement of the path (by fingerprint), with how often it ran."""

    index: int
    identity: SqlIdentity
    first: CapturedStatement
    executions: int

    @property
    def name(self) -> str:
        return f"#{self.index}"


@dataclass(frozen=True)
class MeasureError:
    """A statement that could not be measured at all (rejected, or its database unreachable)."""

    name: str
    message: str


Measured = Observation | MeasureFailure | MeasureError


def group_statements(statements: Sequence[CapturedStatement]) -> tuple[list[StatementGroup], list[CapturedStatement]]:
    """Distinct measurable statements in order of first execution, and those that cannot be measured."""
    groups: dict[str, StatementGroup] = {}
    skipped: list[CapturedStatement] = []
    identities: dict[str, SqlIdentity] = {}  # an N+1 loop repeats the same text: parse it once
    for statement in statements:
        identity = identities.get(statement.sql)
        if identity is None:
            identity = identities[statement.sql] = identify(statement.sql)
        if identity.kind == "refused":
            skipped.append(statement)
            continue
        found = groups.get(identity.fingerprint)
        if found is None:
            groups[identity.fingerprint] = StatementGroup(len(groups) + 1, identity, statement, statement.executions)
        else:
            groups[identity.fingerprint] = replace(found, executions=found.executions + statement.executions)
    return list(groups.values()), skipped


# --- measuring -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Clone:
    """A test database the plugin cloned: the template it copies and the seed data's fingerprint."""

    template: str
    seed_fingerprint: str | None = None


def no_probe(_: psycopg.Connection[Any]) -> float | None:
    return None


@dataclass(frozen=True)
class MeasureTarget:
    """How to measure: settings, the server writes are cloned on, the plugin's clones, the machine probe."""

    settings: MeasureSettings
    server: Server | None = None
    clones: Mapping[str, Clone] = field(default_factory=dict)
    probe: Callable[[psycopg.Connection[Any]], float | None] = no_probe

    def clone_of(self, database: str) -> Clone | None:
        return self.clones.get(dbname_of(database)) if database else None

    def environment(self, session: Mapping[str, str], database: str) -> dict[str, str]:
        """The session's environment, plus the seed data's fingerprint on the plugin's clones."""
        found = dict(session)
        clone = self.clone_of(database)
        if clone is not None and clone.seed_fingerprint:
            found["seed"] = clone.seed_fingerprint
        return found


@dataclass
class PathMeasurements:
    """Per group its outcome, and same-run replays of baseline SQL for reads whose SQL changed."""

    outcomes: list[Measured]
    replays: dict[int, TimingComparison] = field(default_factory=dict)


def _query(group: StatementGroup, spec: PathSpec) -> GuardedQuery:
    return GuardedQuery(
        name=group.name,
        sql=group.first.sql,
        params=group.first.params,
        calls_per_minute=spec.calls_per_minute * group.executions,
        source=group.first.source,
    )


@contextmanager
def _session(
    dsn: str, binding: str, target: MeasureTarget, environment_of: str, *, lock_timeout: bool = False
) -> Iterator[tuple[psycopg.Connection[Any], dict[str, str], float | None]]:
    with connect(dsn, cursor_factory=_CURSORS.get(binding, psycopg.Cursor)) as conn:
        environment = target.environment(prepare_session(conn, target.settings), environment_of)
        if lock_timeout:
            conn.execute("SELECT set_config('lock_timeout', %s, false)", (_LOCK_TIMEOUT,))
        yield conn, environment, target.probe(conn)


def _error(group: StatementGroup, exc: QuerywardenError) -> MeasureError:
    return MeasureError(group.name, mask_dsn(str(exc)))


def _measure_write(group: StatementGroup, spec: PathSpec, target: MeasureTarget, read_only: bool | None) -> Measured:
    query = _query(group, spec)
    database = group.first.database
    clone = target.clone_of(database)
    first_error: QuerywardenError | None = None
    if clone is not None and target.server is not None:
        try:
            with target.server.clone(clone.template, prefix="qw_write") as dsn, _session(
                dsn, group.first.binding, target, database
            ) as (conn, environment, probe):
                return measure(conn, query, target.settings, environment, read_only=read_only, probe_ms=probe)
        except QuerywardenError as exc:
            first_error = exc  # e.g. it refers to rows the test created: try the test's own database
    try:
        with _session(database, group.first.binding, target, database, lock_timeout=True) as (conn, environment, probe):
            return measure(conn, query, target.settings, environment, read_only=read_only, probe_ms=probe)
    except QuerywardenError as exc:
        if "lock timeout" in str(exc):
            return MeasureError(
                group.name,
                f"{mask_dsn(str(exc))}; the test's own transaction still holds locks on these rows: commit or "
                "roll back before the capture block ends",
            )
        if first_error is not None:
            return MeasureError(group.name, f"{mask_dsn(str(first_error))}; on the test's own database: {mask_dsn(str(exc))}")
        return _error(group, exc)


def measure_path(
    groups: Sequence[StatementGroup],
    spec: PathSpec,
    target: MeasureTarget,
    befores: Sequence[Observation | None] = (),
) -> PathMeasurements:
    """Measure each group once: reads on the database they ran on, writes on a throwaway clone.

    A read paired with a baseline statement of different SQL is also replayed against that SQL on
    the same connection, so its timing verdict does not depend on the machine's speed.
    """
    outcomes: dict[int, Measured] = {}
    replays: dict[int, TimingComparison] = {}
    baseline_of = dict(zip((g.index for g in groups), befores))
    writes: list[tuple[StatementGroup, bool | None]] = []
    reads: dict[tuple[str, str], list[StatementGroup]] = {}
    for group in groups:
        if not group.first.database:
            outcomes[group.index] = MeasureError(group.name, "cannot tell which database it ran on")
        elif group.identity.kind == "read":
            reads.setdefault((group.first.database, group.first.binding), []).append(group)
        else:
            writes.append((group, None))
    for (database, binding), members in reads.items():
        try:
            with _session(database, binding, target, database) as (conn, environment, probe):
                for group in members:
                    query = _query(group, spec)
                    try:
                        outcome = measure(conn, query, target.settings, environment, probe_ms=probe)
                    except ReadOnlyViolation:
                        writes.append((group, False))
                        continue
                    except QuerywardenError as exc:
                        outcomes[group.index] = _error(group, exc)
                        continue
                    outcomes[group.index] = outcome
                    before = baseline_of.get(group.index)
                    if isinstance(outcome, Observation) and before is not None and before.fingerprint != outcome.fingerprint:
                        try:
                            replay = replay_against(conn, before.sql, query, target.settings)
                        except QuerywardenError:
                            replay = None
                        if replay is not None:
                            replays[group.index] = replay
        except QuerywardenError as exc:
            for group in members:
                outcomes.setdefault(group.index, _error(group, exc))
    for group, read_only in writes:
        outcomes[group.index] = _measure_write(group, spec, target, read_only)
    measured: list[Measured] = []
    for group in groups:
        found = outcomes[group.index]
        measured.append(replace(found, statement_count=group.executions) if isinstance(found, Observation) else found)
    return PathMeasurements(measured, replays)


# --- judging ---------------------------------------------------------------------------------------


def pair(groups: Sequence[StatementGroup], before: Sequence[Observation]) -> tuple[list[Observation | None], list[Observation]]:
    """For each group its baseline statement (by fingerprint, then leftovers in order), and the unpaired rest."""
    taken = [False] * len(before)
    paired: list[Observation | None] = [None] * len(groups)
    for position, group in enumerate(groups):
        for index, old in enumerate(before):
            if not taken[index] and old.fingerprint == group.identity.fingerprint:
                paired[position], taken[index] = old, True
                break
    leftovers = iter([index for index, done in enumerate(taken) if not done])
    for position in range(len(groups)):
        if paired[position] is None:
            spare = next(leftovers, None)
            if spare is None:
                break
            paired[position], taken[spare] = before[spare], True
    return paired, [old for index, old in enumerate(before) if not taken[index]]


@dataclass(frozen=True)
class PathVerdict:
    """The verdict on one test's path: per-statement results plus what concerns the path as a whole."""

    spec: PathSpec
    groups: tuple[StatementGroup, ...]
    measured: tuple[Measured, ...]
    results: tuple[QueryResult, ...]
    missing: tuple[QueryResult, ...]
    path_reasons: tuple[str, ...]
    path_blocking: bool
    path_slower: bool
    statements_before: int | None
    statements_after: int
    skipped: tuple[CapturedStatement, ...] = ()

    @property
    def blocking(self) -> bool:
        return self.path_blocking or any(r.blocking for r in self.results + self.missing)

    @property
    def status(self) -> Status:
        every = self.results + self.missing
        if self.statements_before is None:
            return "no-baseline"
        if any(r.verdict == Verdict.ERROR for r in every):
            return "error"
        if self.blocking:
            return "fail"
        if self.path_slower or any(r.verdict in (Verdict.WARN, Verdict.NEW, Verdict.MISSING) for r in every):
            return "warn"
        if self.path_reasons or any(r.verdict == Verdict.IMPROVED for r in every):
            return "improved"
        return "pass"


def _n(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 or value == int(value) else f"{value:,.3g}"


def _plugin_wording(reasons: Sequence[str]) -> tuple[str, ...]:
    return tuple(reason.replace("`querywarden update`", UPDATE_FLAG) for reason in reasons)


def _path_ms(observations: Sequence[Observation]) -> float:
    return sum(o.timing.median_ms * o.statement_count for o in observations)


def judge(
    spec: PathSpec,
    groups: Sequence[StatementGroup],
    measured: Sequence[Measured],
    baseline: PathBaseline | None,
    policy: Policy,
    skipped: Sequence[CapturedStatement] = (),
    replays: Mapping[int, TimingComparison] | None = None,
) -> PathVerdict:
    """Compare a measured path with its baseline (None: no baseline, which the caller reports)."""
    results: list[QueryResult] = []
    missing: list[QueryResult] = []
    befores: list[Observation | None] = [None] * len(groups)
    unpaired: list[Observation] = []
    replays = replays or {}
    if baseline is not None:
        befores, unpaired = pair(groups, baseline.statements)
    for group, before, after in zip(groups, befores, measured):
        calls = spec.calls_per_minute * group.executions
        if isinstance(after, MeasureError):
            results.append(QueryResult(group.name, Verdict.ERROR, True, (f"could not be measured: {after.message}",), calls, before, None, group.first.source))
        elif baseline is None:
            continue
        elif before is None:
            results.append(
                QueryResult(
                    group.name,
                    Verdict.NEW,
                    policy.strict,
                    (f"new on this path (not in its baseline); if intended, record it with {UPDATE_FLAG}",),
                    calls,
                    None,
                    after if isinstance(after, Observation) else None,
                    group.first.source,
                )
            )
        else:
            result = compare(group.name, before, after, policy, group.first.source, replays.get(group.index))
            results.append(replace(result, reasons=_plugin_wording(result.reasons)))
    for old in unpaired:
        missing.append(
            QueryResult(old.name, Verdict.MISSING, policy.strict, ("no longer issued by this test (the path does less)",), old.calls_per_minute, old)
        )

    observations = [m for m in measured if isinstance(m, Observation)]
    after_count = sum(group.executions for group in groups)
    reasons: list[str] = []
    blocking = slower = False
    before_count = baseline.statement_count if baseline is not None else None
    if baseline is not None and before_count is not None and after_count != before_count:
        text = f"the path issues {after_count:,} statements instead of {before_count:,}"
        if after_count > before_count:
            slower = True
            repeated = max(groups, key=lambda g: g.executions)
            if repeated.executions > 1:
                text += f"; {repeated.name} ran ×{repeated.executions:,}"
            extra = (_path_ms(observations) - _path_ms(baseline.statements)) * spec.calls_per_minute
            hot = spec.calls_per_minute >= policy.hot_calls_per_minute
            over_budget = extra > policy.extra_ms_per_minute_budget
            reasons.append(text)
            if hot:
                reasons.append(f"hot path: {_n(spec.calls_per_minute)} calls/min (threshold {_n(policy.hot_calls_per_minute)})")
            if over_budget:
                reasons.append(f"adds ≈{extra / 1000:,.1f} s of DB time per minute (budget {policy.extra_ms_per_minute_budget / 1000:g} s)")
            if not hot and not over_budget:
                reasons.append(f"rare path: {_n(spec.calls_per_minute)} calls/min, ≈{max(extra, 0) / 1000:,.2f} s of DB time per minute")
            blocking = hot or over_budget
        else:
            reasons.append(text)
    if spec.budget_ms is not None and len(observations) == len(measured):
        total = _path_ms(observations)
        if total > spec.budget_ms:
            reasons.append(f"its statements take {_n(total)} ms per call in total, over its budget of {_n(spec.budget_ms)} ms")
            blocking = slower = True
    return PathVerdict(
        spec=spec,
        groups=tuple(groups),
        measured=tuple(measured),
        results=tuple(results),
        missing=tuple(missing),
        path_reasons=tuple(reasons),
        path_blocking=blocking,
        path_slower=slower,
        statements_before=before_count,
        statements_after=after_count,
        skipped=tuple(skipped),
    )


def timing_only_suspects(
    verdict: PathVerdict, befores: Sequence[Observation | None], policy: Policy, *, warns: bool = True
) -> list[int]:
    """Positions of statements that block (or, with `warns`, warn) on timing alone: with the baseline's
    timing they would not."""
    return [
        position
        for position, (result, before, after) in enumerate(zip(verdict.results, befores, verdict.measured))
        if before is not None and isinstance(after, Observation) and flagged_on_timing_alone(result, policy, warns=warns)
    ]


def new_baseline(spec: PathSpec, measured: Sequence[Measured]) -> PathBaseline | None:
    """The baseline to record, or None when a statement could not be measured."""
    observations = [m for m in measured if isinstance(m, Observation)]
    if len(observations) != len(measured):
        return None
    return PathBaseline(spec.test, spec.calls_per_minute, tuple(observations))


def _same_except_timing(a: Observation, b: Observation) -> bool:
    first, second = observation_to_dict(a), observation_to_dict(b)
    first.pop("timing")
    second.pop("timing")
    return first == second


def unchanged(old: PathBaseline, new: PathBaseline, verdict: PathVerdict) -> bool:
    """True when rewriting `old` would only churn timing figures: same statements, same plans and work,
    and a verdict that does not block (timing drift below that is noise, as in runner.update)."""
    if old.test != new.test or old.calls_per_minute != new.calls_per_minute or len(old.statements) != len(new.statements):
        return False
    if not all(_same_except_timing(a, b) for a, b in zip(old.statements, new.statements)):
        return False
    return not verdict.blocking


# --- words for people --------------------------------------------------------------------------------


def one_line_sql(sql: str, width: int = _SQL_WIDTH) -> str:
    text = " ".join(sql.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def where(source: SourceLocation | None, function: str | None, root: Path | None) -> str:
    if source is None:
        return "unknown caller"
    path = source.path
    if root is not None:
        try:
            path = os.path.relpath(path, root) if os.path.isabs(path) else path
        except ValueError:
            pass
    return f"{path}:{source.line}" + (f" in {function}" if function else "")


def _figures(observation: Observation) -> str:
    return f"{observation.timing.median_ms:,.3f} ms, {observation.buffers.total:,} buffers, cost {_n(observation.total_cost)}"


def statement_lines(verdict: PathVerdict, root: Path | None, *, everything: bool = False) -> list[str]:
    """Per statement: verdict, SQL, calling line and reasons; passes only when `everything`."""
    lines: list[str] = []
    by_name = {r.name: r for r in verdict.results}
    shown = 0
    for group, outcome in zip(verdict.groups, verdict.measured):
        result = by_name.get(group.name)
        interesting = result is not None and (result.verdict != Verdict.PASS or result.blocking)
        if not (everything or interesting):
            continue
        shown += 1
        if shown > _MAX_SHOWN:
            lines.append(f"  … and more statements (see {UPDATE_FLAG} output or the baseline diff)")
            break
        label = "" if result is None else (result.verdict.value.upper() if result.blocking else result.verdict.value) + " "
        count = f" ×{group.executions:,}" if group.executions > 1 else ""
        lines.append(f"  {label}{group.name}{count} {one_line_sql(group.first.sql)}")
        lines.append(f"      at {where(group.first.source, group.first.function, root)}")
        if isinstance(outcome, Observation) and (result is None or everything):
            lines.append(f"      {_figures(outcome)}; plan: {outcome.signature[0].strip() if outcome.signature else '?'}")
        if result is not None:
            lines.extend(f"      - {reason}" for reason in result.reasons)
    for result in verdict.missing:
        before = result.before
        lines.append(f"  missing {result.name} {one_line_sql(before.sql) if before else ''}".rstrip())
        lines.extend(f"      - {reason}" for reason in result.reasons)
    if verdict.skipped:
        kinds = sorted({one_line_sql(s.sql, 40).split(" ")[0].upper() for s in verdict.skipped})
        lines.append(f"  ({len(verdict.skipped)} statements not measured: {', '.join(kinds)})")
    return lines


def header(verdict: PathVerdict) -> str:
    spec = verdict.spec
    rate = f"{_n(spec.calls_per_minute)} calls/min" + ("" if spec.marked else " (default rate)")
    count = verdict.statements_after
    return f"{spec.test} ({rate}, {count:,} statement{'' if count == 1 else 's'})"


def failure_message(verdict: PathVerdict, baseline_path: Path, root: Path | None) -> str:
    """The message that fails a test whose path regressed, or could not be measured."""
    lines = [f"querywarden: {header(verdict)} {_what_blocks(verdict)}"]
    lines.extend(f"  - {reason}" for reason in verdict.path_reasons)
    lines.extend(statement_lines(verdict, root))
    lines.append(f"  baseline: {_rel(baseline_path, root)}")
    if verdict.status != "error":
        lines.append(f"  If this change is intended, review it and record it with {UPDATE_FLAG}.")
    return "\n".join(lines)


def _what_blocks(verdict: PathVerdict) -> str:
    blocking = [r for r in verdict.results + verdict.missing if r.blocking]
    if verdict.status == "error":
        return "could not be measured"
    if blocking and all(r.verdict == Verdict.INCOMPARABLE for r in blocking) and not verdict.path_blocking:
        return "cannot be compared with its baseline"
    if not blocking:
        return "got slower as a whole and blocks"
    return f"got slower and blocks: {len(blocking)} of {len(verdict.results) + len(verdict.missing)} statements block"


def no_baseline_message(verdict: PathVerdict, baseline_path: Path, root: Path | None) -> str:
    lines = [
        f"querywarden: {header(verdict)} has no baseline ({_rel(baseline_path, root)} does not exist).",
        f"  Review what the test ran and record its baseline with {UPDATE_FLAG}:",
    ]
    lines.extend(statement_lines(verdict, root, everything=True))
    return "\n".join(lines)


def update_failed_message(verdict: PathVerdict, root: Path | None) -> str:
    lines = [f"querywarden: {header(verdict)}: cannot record a baseline, a statement could not be measured"]
    lines.extend(statement_lines(verdict, root, everything=True))
    return "\n".join(lines)


def _rel(path: Path, root: Path | None) -> str:
    if root is None:
        return str(path)
    try:
        return os.path.relpath(path, root)
    except ValueError:
        return str(path)


# --- the whole check of one test ---------------------------------------------------------------------


@dataclass(frozen=True)
class PathOutcome:
    """What happened to one guarded test, in plain data the xdist controller can receive."""

    test: str
    status: Status
    blocking: bool
    summary: tuple[str, ...]
    message: str | None
    baseline: str
    results: tuple[dict[str, Any], ...] = ()  # per statement, in the results-file form (results.query_to_dict)

    def to_plain(self) -> dict[str, Any]:
        return {
            "test": self.test,
            "status": self.status,
            "blocking": self.blocking,
            "summary": list(self.summary),
            "message": self.message,
            "baseline": self.baseline,
            "results": list(self.results),
        }

    @classmethod
    def from_plain(cls, data: Mapping[str, Any]) -> PathOutcome:
        return cls(
            test=str(data["test"]),
            status=data["status"],
            blocking=bool(data["blocking"]),
            summary=tuple(str(line) for line in data["summary"]),
            message=None if data.get("message") is None else str(data["message"]),
            baseline=str(data["baseline"]),
            results=tuple(data.get("results", ())),
        )


def check_path(
    spec: PathSpec,
    statements: Sequence[CapturedStatement],
    store: PathBaselineStore,
    target: MeasureTarget,
    policy: Policy,
    *,
    update: bool,
    root: Path | None,
) -> PathOutcome:
    """Measure a test's captured statements and compare them with (or record) its baseline."""
    groups, skipped = group_statements(statements)
    baseline = store.load(spec.test)
    befores = pair(groups, baseline.statements)[0] if baseline is not None else []
    measurements = measure_path(groups, spec, target, befores)
    measured = measurements.outcomes
    verdict = judge(spec, groups, measured, baseline, policy, skipped, measurements.replays)
    if baseline is not None:
        # In update mode only a block matters (it keeps the old baseline); a warn is confirmed in a check.
        suspects = timing_only_suspects(verdict, befores, policy, warns=not update)
        if suspects:
            # Only the clock says slower: measure those again, the machine probed afresh, and let the
            # second measurement decide. A real slowdown shows twice; a burst of load rarely does.
            again = measure_path(
                [groups[i] for i in suspects], spec, replace(target, probe=calibration_probe), [befores[i] for i in suspects]
            )
            for i, outcome in zip(suspects, again.outcomes):
                measured[i] = outcome
            measurements.replays.update(again.replays)  # a same-run A/B is re-run too: the new one decides
            verdict = judge(spec, groups, measured, baseline, policy, skipped, measurements.replays)
    path = store.path_for(spec.test)
    shown_path = _rel(path, root)
    if update:
        recorded = new_baseline(spec, measured)
        if recorded is None:
            message = update_failed_message(verdict, root)
            return PathOutcome(spec.test, "error", True, (f"ERROR {header(verdict)}", *statement_lines(verdict, root)), message, shown_path)
        if baseline is not None and unchanged(baseline, recorded, verdict):
            return PathOutcome(spec.test, "unchanged", False, (), None, shown_path)
        store.write(recorded)
        was = "new" if baseline is None else verdict.status
        return PathOutcome(spec.test, "written", False, (f"written {shown_path} (was: {was})",), None, shown_path)
    status = verdict.status
    if status == "no-baseline":
        message = no_baseline_message(verdict, path, root)
        return PathOutcome(spec.test, status, True, (f"NO BASELINE {header(verdict)}: run with {UPDATE_FLAG}",), message, shown_path)
    summary: tuple[str, ...] = ()
    if verdict.blocking:  # the details are in the test's failure; the summary lists it
        label = "ERROR" if status == "error" else "FAIL"
        summary = (f"{label} {header(verdict)} {_what_blocks(verdict)} (see its failure)",)
    elif status != "pass":
        label = {"warn": "WARN", "improved": "improved"}.get(status, status)
        summary = (f"{label} {header(verdict)}", *(f"  - {r}" for r in verdict.path_reasons), *statement_lines(verdict, root))
    failure = failure_message(verdict, path, root) if verdict.blocking else None
    from .results import query_to_dict

    results = tuple(query_to_dict(replace(r, name=f"{spec.test} {r.name}")) for r in verdict.results)
    return PathOutcome(spec.test, status, verdict.blocking, summary, failure, shown_path, results)
