"""What happened to one guarded test: its captured statements through the engine, the verdict on
its path, and the words that fail the test or sum it up.

capture -> `check_test` -> engine (measure, replay, judge, confirm) -> `path.judge_path` -> PathOutcome.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ..baseline import PathBaselineStore
from ..engine import BaseSide, Evaluation, Probe, Site, Statement, acceptance, evaluate, launders
from ..observation import Observation, Unmeasured
from ..path import (
    BaseMeasured, PathSpec, PathVerdict, Status, StatementGroup, group_statements, judge_path, new_baseline, pair, unchanged,
)
from ..policy import MeasureSettings, Policy
from ..query import CapturedStatement, SourceLocation
from ..verdict import Verdict

from .session import UPDATE_FLAG
_SQL_WIDTH = 160
_MAX_SHOWN = 12


def _n(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 or value == int(value) else f"{value:,.3g}"


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
        first_sight = verdict.statements_before is None and result is not None and result.verdict == Verdict.NEW
        if result is None or (first_sight and not result.blocking):
            label = ""  # a path without a baseline: every statement is new, say it only when it blocks
        else:
            label = (result.verdict.value.upper() if result.blocking else result.verdict.value) + " "
        count = f" ×{group.executions:,}" if group.executions > 1 else ""
        lines.append(f"  {label}{group.name}{count} {one_line_sql(group.first.sql)}")
        lines.append(f"      at {where(group.first.source, group.first.function, root)}")
        if isinstance(outcome, Observation) and (result is None or everything):
            lines.append(f"      {_figures(outcome)}; plan: {outcome.signature[0].strip() if outcome.signature else '?'}")
        if result is not None:
            lines.extend(f"      - {reason}" for reason in result.reasons)
            if result.basis:
                lines.append(f"      - compared: {result.basis}")
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
    if all(r.verdict == Verdict.NEW for r in blocking) and not verdict.path_blocking:
        return f"is too costly to record: {len(blocking)} of {len(verdict.results)} statements break the budget"
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


def refused_message(verdict: PathVerdict, root: Path | None, accept: str) -> str:
    lines = [f"querywarden: {header(verdict)}: not recorded: it {_what_blocks(verdict)}, and recording never launders that"]
    lines.extend(f"  - {reason}" for reason in verdict.path_reasons)
    lines.extend(statement_lines(verdict, root, everything=True))
    lines.append(f"  Fix it, or record it anyway with {accept}")
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


def _measured_in_place(statement: CapturedStatement) -> Observation | Unmeasured | None:
    """Its measurement inside the test's transaction, made just before it ran there (hosting.InTransaction)."""
    return statement.prior if isinstance(statement.prior, (Observation, Unmeasured)) else None


def _base_measured(base: tuple[str, str] | None, groups: Sequence[StatementGroup], evaluation: Evaluation) -> BaseMeasured | None:
    """What the engine measured of the base revision, by group index."""
    if base is None or evaluation.measured is None:
        return None
    found = evaluation.measured
    why_not = {groups[p].index: f"the base revision {base[0]} could not run it ({why})" for p, why in found.base_errors.items()}
    for position, statement in enumerate(evaluation.statements):
        if statement.base is None and groups[position].index not in why_not and statement.measured is None:
            why_not[groups[position].index] = "it ran on a database not built from the seed, which the base revision's cannot stand for"
    return BaseMeasured(
        base[0],
        {groups[p].index: observation for p, observation in found.bases.items()},
        frozenset(groups[p].index for p in found.loose),
        why_not,
    )


def check_test(
    spec: PathSpec,
    statements: Sequence[CapturedStatement],
    store: PathBaselineStore,
    site: Site,
    settings: MeasureSettings,
    policy: Policy,
    *,
    probe: Probe,
    update: bool,
    root: Path | None,
    accepted: str | None = None,
    base: tuple[str, str] | None = None,
) -> PathOutcome:
    """Measure a test's captured statements and compare them with (or record) its baseline.

    With `base` (the revision, and a database built from its schema and seed), each statement that
    ran on a database built from this tree's seed is also replayed there, interleaved: the base
    revision's code is not run, its schema and data are. A refresh refuses a path that regressed or
    breaks the budget (recording never launders it) unless `accepted` gives the reason, which the
    baseline then carries."""
    policy = replace(policy, accept=policy.accept.replace("{name}", spec.test))
    groups, skipped = group_statements(statements)
    baseline = store.load(spec.test)
    befores = pair(groups, baseline.statements)[0] if baseline is not None else [None] * len(groups)

    def on_base(group: StatementGroup, before: Observation | None) -> BaseSide | None:
        seeded = site.clone_source(group.first.database) is not None
        if base is None or before is None or not seeded or group.first.database == base[1]:
            return None
        return BaseSide(group.query(spec), base[1], base[0])

    evaluation = evaluate(
        [
            Statement(g.query(spec), g.first.database, before, g.executions, g.first.binding,
                      measured=_measured_in_place(g.first), base=on_base(g, before))
            for g, before in zip(groups, befores)
        ],
        site,
        settings,
        policy,
        confirm_warns=not update,  # in update mode only a block matters: it keeps the old baseline
        probe=probe,
        errors="record",
    )
    measured = list(evaluation.outcomes)
    replays = {groups[position].index: replay for position, replay in evaluation.replays.items()}
    verdict = judge_path(spec, groups, measured, baseline, policy, skipped, replays, _base_measured(base, groups, evaluation))
    path = store.path_for(spec.test)
    shown_path = _rel(path, root)
    if update:
        recorded = new_baseline(spec, measured)
        if recorded is None:
            message = update_failed_message(verdict, root)
            return PathOutcome(spec.test, "error", True, (f"ERROR {header(verdict)}", *statement_lines(verdict, root)), message, shown_path)
        if accepted is None and (verdict.path_blocking or any(launders(r) for r in verdict.results)):
            message = refused_message(verdict, root, policy.accept)
            return PathOutcome(spec.test, "fail", True, (f"NOT RECORDED {header(verdict)} {_what_blocks(verdict)}",), message, shown_path)
        previous = baseline.statements[0] if baseline is not None and baseline.statements else None
        reason = acceptance(accepted, previous, verdict.blocking)
        recorded = replace(recorded, statements=tuple(replace(o, accepted=reason) for o in recorded.statements))
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
    from ..reports.results import query_to_dict

    results = tuple(query_to_dict(replace(r, name=f"{spec.test} {r.name}")) for r in verdict.results)
    return PathOutcome(spec.test, status, verdict.blocking, summary, failure, shown_path, results)
