"""Comparing an observation with its baseline, and weighting the difference by call rate.

Deterministic evidence comes first: blocks touched and plan shape do not vary run to run, so they
decide most verdicts. Planner cost and timing count only beyond tolerances that their noise
justifies. A slower query blocks when it is hot or when the database time it adds per minute
exceeds the budget; a slower rare query only warns.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from .baseline import observation_to_dict
from .observation import Observation, Outcome, Unmeasured
from .policy import Policy
from .query import SourceLocation
from .timing_stats import TimingComparison, calibrated_ratio, extra_db_time, noise_threshold
from .verdict import QueryResult, RunResult, Verdict

_INDEXED = ("Index Scan", "Index Only Scan", "Bitmap Heap Scan", "Bitmap Index Scan")
# Differences in these mean costs and block counts are not comparable at all.
_INCOMPARABLE_ENVIRONMENT = ("postgres_major", "block_size", "seed", "data")


def _n(value: float) -> str:
    if value == int(value):
        return f"{int(value):,}"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:,.3g}" if abs(value) < 1 else f"{value:,.2f}"


def _ratio(before: float, after: float) -> str:
    if before <= 0:
        return "new"
    return f"×{after / before:,.3g}" if after / before < 1000 else f"×{after / before:,.0f}"


def _scan_changes(before: Observation, after: Observation, policy: Policy) -> tuple[list[str], bool]:
    """Reasons for relations read differently, and whether one became a big sequential scan."""
    reasons: list[str] = []
    bigger = False
    old, new = before.plan.scans(), after.plan.scans()
    seq_blocks = {
        node.relation: node.buffers.total
        for _, node in after.plan.walk()
        if node.relation and node.node_type == "Seq Scan"
    }
    for relation in sorted(set(old) | set(new)):
        was, now = old.get(relation, set()), new.get(relation, set())
        if was == now:
            continue
        if was and now:
            reasons.append(f"{' + '.join(sorted(was))} on {relation} became {' + '.join(sorted(now))}")
        elif now:
            reasons.append(f"now also reads {relation} ({' + '.join(sorted(now))})")
        else:
            reasons.append(f"no longer reads {relation}")
        lost_index = any(how.startswith(_INDEXED) for how in was) and "Seq Scan" in now
        if lost_index and seq_blocks.get(relation, 0) >= policy.large_relation_blocks and after.allow_seq_scan is None:
            bigger = True
    return reasons, bigger


def _environment_drift(before: Observation, after: Observation) -> tuple[list[str], bool]:
    drift, incomparable = [], False
    for key in sorted(set(before.environment) | set(after.environment)):
        was, now = before.environment.get(key), after.environment.get(key)
        if was != now:
            drift.append(f"{key} {was} → {now}")
            incomparable = incomparable or key in _INCOMPARABLE_ENVIRONMENT
    return drift, incomparable


def _incomparable_reasons(before: Observation, after: Observation, drift: list[str], policy: Policy) -> list[str]:
    """Why a baseline cannot be compared: another PostgreSQL major is named as the upgrade it is (plans,
    costs and block counts of one major say nothing about another's, so it is never a regression)."""
    was, now = before.environment.get("postgres_major"), after.environment.get("postgres_major")
    reasons: list[str] = []
    rest = drift
    if was is not None and now is not None and was != now:
        rest = [d for d in drift if not d.startswith("postgres_major ")]
        try:
            older = int(now) < int(was)
        except ValueError:
            older = False
        if older:
            reasons.append(f"PostgreSQL {was} → {now} (an older major): re-record the baselines on this major with "
                           f"{policy.refresh}, or check on PostgreSQL {was}; plans are not comparable across majors")
        else:
            reasons.append(f"PostgreSQL {was} → {now}: re-record the baselines on the new major with {policy.refresh}; "
                           "plans are not comparable across majors")
        if not any(d.split(" ", 1)[0] in _INCOMPARABLE_ENVIRONMENT for d in rest):
            reasons.extend(f"environment drift: {d}" for d in rest)
            return reasons
    reasons.append(
        f"baseline was measured in another environment or on another seed ({'; '.join(rest)}); "
        f"refresh it with {policy.refresh}"
    )
    return reasons


# With these differing, a stored baseline is incomparable; against the base revision they are the change under test.
_CHANGED_BY_THE_REVISION = ("seed", "data")
SEED_DIFFERS = "the schema or seed differs from the base revision's"


def against_base(base: Observation, after: Outcome, statement_count: int | None = None) -> tuple[Observation, tuple[str, ...]]:
    """The base revision's observation of this run as the `before` of a verdict, and notes on it.

    The seed or data fingerprint of the base's database is the change under test, not an environment
    drift that makes the two incomparable. `statement_count` is how often the base issued the
    statement, when a baseline knows it (the plugin replays the head's statements on the base)."""
    if statement_count is not None:
        base = replace(base, statement_count=statement_count)
    if not isinstance(after, Observation):
        return base, ()
    moved = [key for key in _CHANGED_BY_THE_REVISION if base.environment.get(key) != after.environment.get(key)]
    if not moved:
        return base, ()
    environment = {**base.environment, **{key: after.environment.get(key, "") for key in moved}}
    return replace(base, environment=environment), (SEED_DIFFERS,)


def ab_basis(revision: str, loose: bool = False) -> str:
    """What a verdict measured against the base revision rests on (`QueryResult.basis`)."""
    timed = "; timed on two server processes this machine could not put on one core, which load can set apart" if loose else ""
    return f"same-run A/B against the base revision {revision}: plan, work and timing{timed}"


NEW_BASIS = "no baseline: judged on its own cost at its call rate"


def baseline_basis(replayed: bool) -> str:
    """The basis of a verdict in a run without a base revision."""
    if replayed:
        return "same-run A/B against the baseline SQL: timing; plan and work against the stored baseline"
    return "the stored baseline: plan, work and timing (another run's timing, the machine's speed divided out)"


def stored_basis(why: str) -> str:
    """The basis of a verdict in a run with a base revision that had to fall back on the stored baseline."""
    return f"the stored baseline, as {why}: plan and work decide, timing does not"


def _speed(before: Observation, after: Observation) -> float:
    """How much slower this run's machine was than the baseline's, from their calibration probes."""
    if before.timing.probe_ms and after.timing.probe_ms:
        return after.timing.probe_ms / before.timing.probe_ms
    return 1.0


def _timing_evidence(
    before: Observation, after: Observation, replay: TimingComparison | None, policy: Policy, corroborated: bool,
    against: str = "the baseline SQL",
) -> tuple[str | None, str | None]:
    """(slower reason, faster reason) from timing: a same-run A/B decides when there is one."""
    old_ms, new_ms = before.timing.median_ms, after.timing.median_ms
    if replay is not None:
        text = (
            f"same-run A/B against {against}: ×{replay.ratio:.2f} "
            f"[{replay.ci_low:.2f}–{replay.ci_high:.2f}], p={replay.p_value:.2g}"
        )
        return (text, None) if replay.decision == "slower" else (None, text) if replay.decision == "faster" else (None, None)
    speed = _speed(before, after)
    raw = new_ms / old_ms if old_ms > 0 else 1.0
    calibrated = calibrated_ratio(raw, before.timing.probe_ms or 1.0, after.timing.probe_ms or 1.0)
    floor = 1 + policy.time_tolerance
    threshold = noise_threshold(after.timing.samples_ms, floor=floor) if len(after.timing.samples_ms) >= 2 else floor
    calibration = f", ×{calibrated:.3g} after dividing out the machine's speed (×{speed:.2f} by probe)" if speed != 1.0 else ""
    text = f"median {_n(old_ms)} → {_n(new_ms)} ms (×{raw:.3g}{calibration})"
    # The probe is itself a measurement: a verdict needs the raw and the calibrated ratio to agree,
    # so a noisy probe can excuse a slowdown but never invent one (or an improvement).
    if min(raw, calibrated) > threshold and new_ms - old_ms > policy.time_floor_ms:
        if corroborated or after.timing.min_ms > before.timing.median_ms:
            return text, None
    elif max(raw, calibrated) * threshold < 1 and old_ms - new_ms > policy.time_floor_ms:
        return None, text
    return None, None


def _extra_ms_per_call(before: Observation, after: Observation, replay: TimingComparison | None) -> float:
    """Extra database time per call of the code path.

    Each execution's slowdown comes from the same-run replay when there is one, else from the stored
    medians (machine speed divided out); every extra statement the path now issues (an N+1 loop)
    adds its own time. `calls_per_minute` counts executions, so a path that ran a statement
    `statement_count` times per call is called `calls_per_minute / statement_count` times a minute.
    """
    per_statement = after.timing.median_ms / max(_speed(before, after), 1.0)
    if replay is not None and replay.ratio > 0:
        slower_by = max(after.timing.median_ms * (1 - 1 / replay.ratio), 0.0)
    else:
        slower_by = max(per_statement - before.timing.median_ms, 0.0)
    extra_statements = max(after.statement_count - before.statement_count, 0)
    return slower_by * after.statement_count + extra_statements * per_statement


def weigh(calls: float, extra_ms_per_minute: float, policy: Policy, *, what: str = "", extra_text: str | None = None) -> tuple[bool, list[str]]:
    """Whether a slowdown blocks, with its reasons: it does when the query (`what` = " path": the test's
    code path) is hot, or when the database time it adds per minute exceeds the budget."""
    hot = calls >= policy.hot_calls_per_minute
    over_budget = extra_ms_per_minute > policy.extra_ms_per_minute_budget
    reasons: list[str] = []
    if hot:
        reasons.append(f"hot{what}: {_n(calls)} calls/min (threshold {_n(policy.hot_calls_per_minute)})")
    if extra_text is not None and (extra_ms_per_minute > 0 or over_budget):
        reasons.append(extra_text + (f" (budget {policy.extra_ms_per_minute_budget / 1000:g} s)" if over_budget else ""))
    if not hot and not over_budget:
        reasons.append(f"rare{what}: {_n(calls)} calls/min (threshold {_n(policy.hot_calls_per_minute)})")
    return hot or over_budget, reasons


@dataclass(frozen=True)
class Load:
    """What a query costs production at its call rate: database time and blocks touched per minute."""

    ms_per_call: float
    buffers_per_call: float
    calls_per_minute: float
    planning_ms: float | None = None
    execution_ms: float | None = None

    @property
    def ms_per_minute(self) -> float:
        return self.ms_per_call * self.calls_per_minute

    @property
    def cores(self) -> float:
        """Busy cores: database seconds per second."""
        return self.ms_per_minute / 60_000.0

    def describe(self, production_cores: float) -> str:
        planning = (
            f" (EXPLAIN: planning {_n(self.planning_ms)} ms, execution {_n(self.execution_ms)} ms)"
            if self.planning_ms is not None and self.execution_ms is not None else ""
        )
        return (
            f"{_n(self.ms_per_call)} ms{planning} and {_n(self.buffers_per_call)} buffers a call; at {_n(self.calls_per_minute)} "
            f"calls/min ≈ {_n(self.ms_per_minute / 1000)} s of database time per minute ≈ {self.cores:,.3g} cores "
            f"of a {_n(production_cores)}-core database"
        )


def load_of(observation: Observation) -> Load:
    return Load(observation.timing.median_ms, observation.buffers.total, observation.calls_per_minute,
                observation.planning_ms, observation.execution_ms)


def big_scans(observation: Observation, policy: Policy) -> list[str]:
    """Sequential scans of large relations: deterministic evidence of a query that grows with the data
    (none for a query whose reviewed exception allows them)."""
    if observation.allow_seq_scan is not None:
        return []
    return [
        f"Seq Scan on {node.relation} ({_n(node.buffers.total)} buffers, {_n(node.actual_rows * node.actual_loops)} rows)"
        for _, node in observation.plan.walk()
        if node.relation and node.node_type == "Seq Scan" and node.buffers.total >= policy.large_relation_blocks
    ]


def fragile_estimates(observation: Observation, factor: float = 10.0, floor: float = 100.0) -> list[str]:
    """Plan nodes that found `factor` or more times the rows the planner expected (and at least `floor`
    more): the plan most likely to flip when production's data moves, worth knowing on a hot query.
    Only underestimates count: a node that stops early (under a LIMIT, an EXISTS) finds fewer rows than
    estimated by design, and a plan built for more rows than it meets rarely goes wrong."""
    found = []
    for _, node in observation.plan.walk():
        estimated, actual = node.plan_rows, node.actual_rows
        if actual - estimated >= floor and actual >= factor * max(estimated, 1.0):
            found.append(f"fragile plan: {node.label} estimated {_n(estimated)} rows and found {_n(actual)}")
    return found


def judge_new(name: str, after: Observation, policy: Policy) -> tuple[bool, list[str]]:
    """A query with no baseline, judged on its own cost: it blocks when it alone would take more of the
    production database than a query may (`query_cores_budget`), or when a hot one scans a large
    relation sequentially (deterministic evidence first: time on a CI machine is not production's).
    A cheap one is recorded by a refresh and passes."""
    load = load_of(after)
    scans = big_scans(after, policy)
    hot = after.calls_per_minute >= policy.hot_calls_per_minute
    over = load.cores > policy.query_cores_budget
    cost = load.describe(policy.production_cores)
    budget = f"budget {policy.query_cores_budget:g} cores a query"
    fragile = fragile_estimates(after) if hot else []
    allowed = [f"sequential scans allowed: {after.allow_seq_scan}"] if after.allow_seq_scan is not None else []
    if over or (hot and scans):
        why = [f"new, and too costly to record: {cost} ({budget})"]
        if scans:
            why.append(("hot: " if hot else "") + "; ".join(scans))
        why.extend(fragile)
        why.append(f"fix it, or record it anyway with {policy.accept.format(name=name)}")
        return True, why
    return False, [f"new: {cost} ({budget}); record it with {policy.refresh}", *allowed, *fragile]


def _weigh(
    name: str,
    before: Observation,
    after: Observation,
    reasons: list[str],
    policy: Policy,
    source: SourceLocation | None,
    replay: TimingComparison | None = None,
) -> QueryResult:
    """A slower query: block when hot or when its extra DB time per minute exceeds the budget."""
    calls = after.calls_per_minute
    extra = extra_db_time(_extra_ms_per_call(before, after, replay), calls / max(after.statement_count, 1))
    blocking, weight = weigh(calls, extra.ms_per_minute, policy, extra_text=extra.describe())
    return QueryResult(
        name=name,
        verdict=Verdict.FAIL if blocking else Verdict.WARN,
        blocking=blocking,
        reasons=tuple(reasons + weight),
        calls_per_minute=calls,
        before=before,
        after=after,
        source=source,
        extra_ms_per_minute=extra.ms_per_minute,
    )


def compare(
    name: str,
    before: Observation | None,
    after: Observation | Unmeasured | None,
    policy: Policy,
    source: SourceLocation | None = None,
    replay: TimingComparison | None = None,
    *,
    against: str = "the baseline SQL",
    stored_timing: bool = True,
    loose: bool = False,
) -> QueryResult:
    """The verdict on one query, with the reasons a reviewer needs.

    `replay` is a same-run A/B of `before` against the new query: the baseline's SQL when the SQL
    changed, or the base revision's query on the base revision's database (`against` names which).
    Without `stored_timing` (a run with a base revision, where this query could not be paired), a
    timing against the stored baseline is a note and never decides. A `loose` replay was timed on two
    server processes that could not share a core: a difference between the two sessions reads as a
    difference between the queries there, so alone it counts as weakly as stored timing.
    """
    if after is None:
        assert before is not None
        return QueryResult(
            name=name,
            verdict=Verdict.MISSING,
            blocking=policy.strict,
            reasons=(f"baseline exists but no query of that name was measured; remove it with {policy.prune}",),
            calls_per_minute=before.calls_per_minute,
            before=before,
            source=source,
        )
    if isinstance(after, Unmeasured):
        return QueryResult(
            name=name,
            verdict=Verdict.FAIL if after.timed_out else Verdict.ERROR,
            blocking=True,
            reasons=(after.message if after.timed_out else f"could not be measured: {after.message}",),
            calls_per_minute=after.calls_per_minute,
            before=before,
            source=source,
        )
    if before is None:
        blocking, reasons = judge_new(name, after, policy)
        return QueryResult(
            name=name,
            verdict=Verdict.NEW,
            blocking=blocking,
            reasons=tuple(reasons),
            calls_per_minute=after.calls_per_minute,
            after=after,
            source=source,
            extra_ms_per_minute=after.timing.median_ms * after.calls_per_minute,
        )

    def result(verdict: Verdict, blocking: bool, reasons: list[str]) -> QueryResult:
        return QueryResult(
            name=name,
            verdict=verdict,
            blocking=blocking,
            reasons=tuple(reasons),
            calls_per_minute=after.calls_per_minute,
            before=before,
            after=after,
            source=source,
        )

    drift, incomparable = _environment_drift(before, after)
    if incomparable:
        return result(Verdict.INCOMPARABLE, True, _incomparable_reasons(before, after, drift, policy))

    slower: list[str] = []
    faster: list[str] = []
    notes: list[str] = [f"environment drift: {d}" for d in drift]
    if before.accepted:
        notes.insert(0, f"recorded over the budget, accepted: {before.accepted}")
    if after.allow_seq_scan is not None and before.allow_seq_scan != after.allow_seq_scan:
        notes.append(f"sequential scans now allowed: {after.allow_seq_scan}")

    if after.budget_ms is not None and after.timing.median_ms > after.budget_ms:
        return result(
            Verdict.FAIL,
            True,
            [f"median {_n(after.timing.median_ms)} ms exceeds its budget of {_n(after.budget_ms)} ms", *notes],
        )

    if after.statement_count > before.statement_count:
        slower.append(f"issues {after.statement_count:,} statements instead of {before.statement_count:,}")
    elif after.statement_count < before.statement_count:
        faster.append(f"issues {after.statement_count:,} statements instead of {before.statement_count:,}")

    scan_reasons, big_seq_scan = _scan_changes(before, after, policy)
    old_blocks, new_blocks = before.buffers.total, after.buffers.total
    blocks_text = f"buffers {_n(old_blocks)} → {_n(new_blocks)} ({_ratio(old_blocks, new_blocks)})"
    if new_blocks - old_blocks >= policy.buffers_floor and new_blocks > old_blocks * (1 + policy.buffers_tolerance):
        slower.append(blocks_text)
    elif old_blocks - new_blocks >= policy.buffers_floor and old_blocks > new_blocks * (1 + policy.buffers_tolerance):
        faster.append(blocks_text)
    if big_seq_scan:
        slower.extend(scan_reasons)
    else:
        notes.extend(f"plan: {reason}" for reason in scan_reasons)
    new_spills = sorted(set(after.plan.spills()) - set(before.plan.spills()))
    if new_spills:
        slower.extend(f"now spills to disk: {spill}" for spill in new_spills)

    # Cost is an estimate: a new statistics sample (a rebuilt template) moves it with the same plan
    # and the same work. It counts with other evidence of work or a plan of another shape, else it
    # is a note (seen: ×1.22 between five rebuilds of the example at the default statistics target).
    old_cost, new_cost = before.total_cost, after.total_cost
    cost_text = f"cost {_n(old_cost)} → {_n(new_cost)} ({_ratio(old_cost, new_cost)})"
    reshaped = before.signature != after.signature
    if new_cost > old_cost * (1 + policy.cost_tolerance):
        if slower or reshaped:
            slower.append(cost_text)
        else:
            notes.append(f"{cost_text} with the same plan and work: estimates moved, not the query")
    elif old_cost > new_cost * (1 + policy.cost_tolerance):
        if faster or reshaped:
            faster.append(cost_text)
        else:
            notes.append(f"{cost_text} with the same plan and work: estimates moved, not the query")

    corroborated = bool(slower)
    slower_time, faster_time = _timing_evidence(before, after, replay, policy, corroborated=corroborated, against=against)
    if replay is None and not stored_timing and (slower_time or faster_time):
        notes.append(f"stored timing, not deciding in a run against a base revision: {slower_time or faster_time}")
        slower_time = faster_time = None
    if slower_time:
        slower.append(slower_time)
    elif faster_time and replay is not None and not loose:
        faster.append(faster_time)
    elif faster_time:
        notes.append(f"faster by the {'loosely paired' if loose else 'stored'} timing: {faster_time}")
    if replay is not None and replay.decision == "inconclusive":
        notes.append(
            f"same-run A/B against {against} inconclusive: ×{replay.ratio:.2f} "
            f"[{replay.ci_low:.2f}–{replay.ci_high:.2f}], p={replay.p_value:.2g}"
        )
    # Timing against a stored baseline is the weakest evidence (another run, maybe another machine):
    # alone, and below a large effect, it warns instead of blocking.
    weak_timing = (
        slower_time is not None
        and not corroborated
        and (replay is None or loose)
        and after.timing.median_ms < before.timing.median_ms * policy.stored_time_block_ratio
    )

    if before.signature != after.signature and not scan_reasons:
        if abs(new_cost - old_cost) <= 0.01 * max(old_cost, 1e-9):
            notes.append("plan flipped between equal-cost alternatives: the planner's choice is unstable here")
        else:
            notes.append("plan shape changed")
    if after.fingerprint != before.fingerprint:
        notes.append("SQL changed")
    if after.calls_per_minute >= policy.hot_calls_per_minute:
        notes.extend(fragile_estimates(after))

    if slower:
        weighed = _weigh(name, before, after, slower + notes, policy, source, replay)
        if weak_timing and weighed.blocking:
            return replace(
                weighed,
                verdict=Verdict.WARN,
                blocking=False,
                reasons=weighed.reasons
                + (f"timing alone {'on two server processes that could not share a core' if loose else 'against a stored baseline'} "
                   f"blocks only past ×{policy.stored_time_block_ratio:g}",),
            )
        return weighed
    if faster:
        return result(Verdict.IMPROVED, False, faster + notes)
    return result(Verdict.PASS, False, notes)


def _severity(result: QueryResult) -> int:
    return 2 if result.blocking else 1 if result.verdict == Verdict.WARN else 0


def flagged_on_timing_alone(result: QueryResult, policy: Policy, *, warns: bool = True) -> bool:
    """True when `result` blocks (or, with `warns`, warns) only because of its timing: with the
    baseline's timing it would do less (a block would warn or pass, a warn would pass).

    Such a verdict is measured once more, and the second measurement decides: a real slowdown shows
    twice, a burst of load on a shared machine rarely does. Warns count too: in the detection
    benchmark 7 of 50 unchanged runs warned on one query's stored timing alone (×1.3–1.9). Update
    mode asks about blocks only (`warns=False`): a warn does not change what it writes. A verdict
    that also rests on work, plan or statement count is never re-measured.
    """
    before, after = result.before, result.after
    lowest = 1 if warns else 2
    if _severity(result) < lowest or result.verdict not in (Verdict.FAIL, Verdict.WARN) or before is None or after is None:
        return False
    steady = compare(result.name, before, replace(after, timing=before.timing), policy, result.source)
    return _severity(steady) < _severity(result)


def timing_only(results: Sequence[QueryResult], policy: Policy, *, warns: bool = True) -> list[int]:
    """Positions of the results that block (or, with `warns`, warn) on timing alone."""
    return [position for position, result in enumerate(results) if flagged_on_timing_alone(result, policy, warns=warns)]


def keeps(before: Observation | None, after: Observation, *, blocking: bool) -> bool:
    """Whether a refresh leaves the committed baseline `before` as it is.

    It does when plan, work and everything else but timing are unchanged and the verdict does not
    block: timing drift below a block is noise, not news for a diff.
    """
    if before is None or blocking:
        return False
    first, second = observation_to_dict(before), observation_to_dict(after)
    first.pop("timing")
    second.pop("timing")
    return bool(_without_estimates(first) == _without_estimates(second))


def _without_estimates(document: Any) -> Any:
    """The document without planner estimates (cost, estimated rows), which move with each statistics
    sample: like timing, they are rewritten only along with a change that matters."""
    if isinstance(document, dict):
        return {k: _without_estimates(v) for k, v in document.items() if k not in ("total_cost", "plan_rows")}
    if isinstance(document, list):
        return [_without_estimates(item) for item in document]
    return document


CHANGE = "(this change)"


def change_budget(results: Sequence[QueryResult], policy: Policy, what: str = "queries") -> QueryResult | None:
    """A blocking result when the change as a whole adds more load than `change_cores_budget`: each
    regression's extra database time and each new query's whole load, at their call rates (queries
    judged unchanged add nothing, so timing noise on them cannot add up to a block). Only said when
    nothing blocks on its own: then it is the small additions that add up."""
    added = RunResult(tuple(results)).extra_ms_per_minute / 60_000.0
    if added <= policy.change_cores_budget or any(r.blocking for r in results):
        return None
    return QueryResult(
        name=CHANGE,
        verdict=Verdict.FAIL,
        blocking=True,
        reasons=(
            f"together its regressed and new {what} add ≈ {added:,.3g} cores of a {_n(policy.production_cores)}-core "
            f"database at their call rates (budget {policy.change_cores_budget:g} core{'' if policy.change_cores_budget == 1 else 's'} a change)",
        ),
        calls_per_minute=0.0,
        extra_ms_per_minute=None,
    )


def missing(recorded: Mapping[str, Observation], measured: Collection[str], policy: Policy) -> tuple[QueryResult, ...]:
    """The baselines whose query was not measured (it is gone from the catalog, or renamed)."""
    return tuple(compare(name, before, None, policy) for name, before in recorded.items() if name not in measured)
