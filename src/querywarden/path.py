"""A test's code path: its distinct statements, their pairing with the recorded ones, and the verdict
on the path as a whole.

The pytest plugin captures every statement a test runs. They are grouped by fingerprint (each
distinct statement is measured once, with the parameters of its first execution) and paired with the
test's baseline statements:

- by fingerprint, then leftovers in capture order, so a benign rewrite (alias renamed, SQL
  reformatted) compares with its old self;
- each pair is judged by `judge.compare`, with `statement_count` set to the number of times the
  statement ran, so an N+1 loop over a statement the path already issued reads as slower;
- the path's total statement count is part of its baseline too: more statements than recorded is a
  regression of the path, weighted like any other (blocking on a hot path).

Pure: no database. The engine measures the statements; this module judges what it measured.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

from .baseline import PathBaseline
from .fingerprint import SqlIdentity, identify
from .judge import NEW_BASIS, ab_basis, against_base, baseline_basis, compare, keeps, stored_basis, weigh
from .observation import Observation, Outcome
from .policy import Policy
from .query import CapturedStatement, GuardedQuery
from .timing_stats import TimingComparison
from .verdict import QueryResult, Verdict

Status = Literal["pass", "improved", "warn", "fail", "error", "no-baseline", "written", "unchanged"]


@dataclass(frozen=True)
class PathSpec:
    """The guarded test and how it is weighted: by its `hot_path` marker, else the default rate."""

    test: str
    calls_per_minute: float
    budget_ms: float | None = None
    marked: bool = False
    allow_seq_scan: str | None = None  # the marker's reviewed exception, with its reason


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

    def query(self, spec: PathSpec) -> GuardedQuery:
        """The statement as the engine measures it, weighted by every execution on the path."""
        return GuardedQuery(
            name=self.name,
            sql=self.first.sql,
            params=self.first.params,
            calls_per_minute=spec.calls_per_minute * self.executions,
            source=self.first.source,
            allow_seq_scan=spec.allow_seq_scan,
        )


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
    measured: tuple[Outcome, ...]
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


def _path_ms(observations: Sequence[Observation]) -> float:
    return sum(o.timing.median_ms * o.statement_count for o in observations)


@dataclass(frozen=True)
class BaseMeasured:
    """The base revision's side of a path measured in the same run: by group index, its observations,
    the A/Bs timed on two backends that could not share a core, and why other groups have none."""

    revision: str
    observations: Mapping[int, Observation]
    loose: frozenset[int] = frozenset()
    why_not: Mapping[int, str] = field(default_factory=dict)


def _against(
    group: StatementGroup, before: Observation | None, after: Outcome, policy: Policy,
    replay: TimingComparison | None, base: BaseMeasured | None,
) -> QueryResult:
    """One statement's verdict: against the base revision's measurement when there is one, else its baseline."""
    source = group.first.source
    if base is None or before is None:
        result = compare(group.name, before, after, policy, source, replay)
        if before is None:
            return replace(result, basis=NEW_BASIS)
        return replace(result, basis=baseline_basis(replay is not None))
    measured_base = base.observations.get(group.index)
    if measured_base is not None and before.accepted is None:
        aligned, notes = against_base(measured_base, after, before.statement_count)
        loose = group.index in base.loose
        result = compare(group.name, aligned, after, policy, source, replay, against=f"the base revision {base.revision}", loose=loose)
        return replace(result, reasons=result.reasons + notes, basis=ab_basis(base.revision, loose))
    result = compare(group.name, before, after, policy, source, stored_timing=False)
    why = f"its baseline records an accepted cost ({before.accepted})" if before.accepted else base.why_not.get(
        group.index, "it was measured inside the test's transaction, whose rows the base revision's database does not have")
    return replace(result, basis=stored_basis(why))


def judge_path(
    spec: PathSpec,
    groups: Sequence[StatementGroup],
    measured: Sequence[Outcome],
    baseline: PathBaseline | None,
    policy: Policy,
    skipped: Sequence[CapturedStatement] = (),
    replays: Mapping[int, TimingComparison] | None = None,
    base: BaseMeasured | None = None,
) -> PathVerdict:
    """Compare a measured path with its baseline (None: no baseline, which the caller reports).

    `replays` holds same-run A/Bs by group index: against the baseline's SQL for statements whose
    SQL changed, against the base revision's database with `base`. A statement the baseline knows is
    then judged against the base's measurement of it (the path's statement count still the
    baseline's); one it does not know is new to the path, judged on its own cost as without a base.
    """
    results: list[QueryResult] = []
    befores: list[Observation | None] = [None] * len(groups)
    unpaired: list[Observation] = []
    replays = replays or {}
    if baseline is not None:
        befores, unpaired = pair(groups, baseline.statements)
    hot = spec.calls_per_minute >= policy.hot_calls_per_minute
    for group, before, after in zip(groups, befores, measured):
        result = _against(group, before, after, policy, replays.get(group.index), base)
        if result.verdict == Verdict.NEW:
            # New to the path, or a path seen for the first time: judged on its own cost, and an
            # N+1 loop on its own merits, not only as a rise against a baseline it never had.
            why = list(result.reasons)
            blocking = result.blocking or (baseline is not None and policy.strict)
            loop = before is None and group.executions >= policy.loop_statements and (
                baseline is None or not any(o.statement_count >= policy.loop_statements for o in baseline.statements)
            )
            if loop:
                why.insert(0, f"N+1: issued ×{group.executions:,} in one call of the path, at "
                              f"{_n(spec.calls_per_minute)} calls/min of the path")
                blocking = blocking or hot
            if baseline is not None:
                why.insert(0, "new on this path (not in its baseline)")
            result = replace(result, blocking=blocking, reasons=tuple(why))
        results.append(result)
    missing = [
        QueryResult(old.name, Verdict.MISSING, policy.strict, ("no longer issued by this test (the path does less)",), old.calls_per_minute, old)
        for old in unpaired
    ]

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
            blocking, weight = weigh(
                spec.calls_per_minute, max(extra, 0.0), policy, what=" path",
                extra_text=f"adds ≈{max(extra, 0) / 1000:,.2f} s of DB time per minute",
            )
            reasons.extend([text, *weight])
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


def new_baseline(spec: PathSpec, measured: Sequence[Outcome]) -> PathBaseline | None:
    """The baseline to record, or None when a statement could not be measured."""
    observations = [m for m in measured if isinstance(m, Observation)]
    if len(observations) != len(measured):
        return None
    return PathBaseline(spec.test, spec.calls_per_minute, tuple(observations))


def unchanged(old: PathBaseline, new: PathBaseline, verdict: PathVerdict) -> bool:
    """True when rewriting `old` would only churn timing figures: same statements, each kept by
    `judge.keeps`, and a path verdict that does not block."""
    if old.test != new.test or old.calls_per_minute != new.calls_per_minute or len(old.statements) != len(new.statements):
        return False
    return all(keeps(a, b, blocking=verdict.blocking) for a, b in zip(old.statements, new.statements))
