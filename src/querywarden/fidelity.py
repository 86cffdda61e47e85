"""Fidelity: are CI's plans production's plans?

A regression check compares CI with CI (a baseline measured on the seed). Nothing in it says that the
seed makes the planner choose what it chooses in production: a seed too small, too uniform or with
other statistics gives another plan, and a baseline then guards a plan production never runs. This
module reads production's plans of the hot queries, EXPLAIN (FORMAT JSON) exports (one file per
catalog query, named after it) or auto_explain's JSON plans in a server log (matched to catalog
queries by their text), and compares each with CI's plan of the same query, node by node: the same
shape, or the first node that differs (its depth, the path to it, production's node and CI's).

Only the shape counts, as in a baseline's signature: node types, join types, aggregate strategies,
relations and indexes. Costs and row counts are production's own and are never compared.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .call_rates import statement_key
from .errors import QuerywardenError
from .fingerprint import identify
from .plan import PlanNode, parse_node
from .query import GuardedQuery

MAX_FILE_BYTES = 256 * 1024 * 1024
_PLAN_MARK = re.compile(r"plan:\s*(?=\{)")


class FidelityError(QuerywardenError):
    """Production's plans cannot be read (exit 2)."""


@dataclass(frozen=True)
class ProductionPlan:
    """One plan production ran: where it was read, what it names (a file named after a query) or the
    statement text auto_explain logged with it."""

    origin: str  # file, or file:line
    plan: PlanNode
    name: str | None = None
    text: str | None = None


@dataclass(frozen=True)
class Difference:
    """The first node, in tree order, where two plans part."""

    depth: int
    path: tuple[str, ...]  # labels from the root down to the parent of the differing node
    production: str | None  # production's node there (None: production has no node there)
    ci: str | None

    def describe(self) -> str:
        where = f"at depth {self.depth}" + (f" (under {' > '.join(self.path)})" if self.path else " (the top node)")
        if self.production is None:
            return f"{where}: CI has {self.ci}, production has no node there"
        if self.ci is None:
            return f"{where}: production has {self.production}, CI has no node there"
        return f"{where}: production has {self.production}, CI has {self.ci}"


@dataclass(frozen=True)
class Fidelity:
    """One hot query: production's plans of it, CI's plan, and whether they have one shape."""

    query: GuardedQuery
    status: str  # "same", "gap", "no production plan", "no CI plan"
    ci_source: str = ""
    production: tuple[ProductionPlan, ...] = ()
    shapes: int = 0  # distinct production shapes
    dominant_share: float = 0.0  # of production's plans, the share with the dominant shape
    difference: Difference | None = None
    ci_matches_other: bool = False  # CI has one of production's less frequent shapes
    ci_signature: tuple[str, ...] = ()
    production_signature: tuple[str, ...] = ()
    note: str = ""

    @property
    def gap(self) -> bool:
        return self.status == "gap"


@dataclass(frozen=True)
class Report:
    results: tuple[Fidelity, ...]
    unmatched: tuple[ProductionPlan, ...] = ()
    sources: tuple[str, ...] = field(default=())

    @property
    def gaps(self) -> tuple[Fidelity, ...]:
        return tuple(r for r in self.results if r.gap)


# --------------------------------------------------------------------------------------------------
# Reading production's plans
# --------------------------------------------------------------------------------------------------


def _plan_of(document: Any) -> tuple[Mapping[str, Any], str | None] | None:
    """The top plan node of an EXPLAIN (FORMAT JSON) result (`[{"Plan": …}]`), of its one element, or
    of an auto_explain object (`{"Query Text": …, "Plan": …}`), with the query text if it has one."""
    if isinstance(document, list) and len(document) == 1:
        document = document[0]
    if isinstance(document, dict) and isinstance(document.get("Plan"), dict):
        text = document.get("Query Text")
        return document["Plan"], text if isinstance(text, str) else None
    return None


def _parsed(node: Mapping[str, Any], origin: str) -> PlanNode:
    try:
        return parse_node(node)
    except (KeyError, TypeError, ValueError) as exc:
        raise FidelityError(f"{origin}: not an EXPLAIN (FORMAT JSON) plan ({type(exc).__name__}: {exc})") from None


def _log_plans(text: str, origin: str) -> list[ProductionPlan]:
    """auto_explain's JSON plans in a log: stderr/syslog text (`… LOG:  duration: 1.2 ms  plan:` then the
    JSON, continuation lines tab-indented), jsonlog lines (the plan inside "message") or csvlog's
    message column; anything else in the log is ignored."""
    found: list[ProductionPlan] = []
    decoder = json.JSONDecoder()

    def scan(chunk: str, base_line: int, offset: int) -> None:  # noqa: ARG001
        for mark in _PLAN_MARK.finditer(chunk):
            try:
                document, _ = decoder.raw_decode(chunk, mark.end())
            except ValueError:
                continue
            plan = _plan_of(document)
            if plan is None:
                continue
            line = base_line + chunk.count("\n", 0, mark.start())
            found.append(ProductionPlan(f"{origin}:{line}", _parsed(plan[0], f"{origin}:{line}"), text=plan[1]))

    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if stripped.startswith("{") and '"message"' in stripped:  # jsonlog (PostgreSQL 15+)
            try:
                entry = json.loads(stripped)
            except ValueError:
                continue
            if isinstance(entry, dict) and isinstance(entry.get("message"), str):
                scan(entry["message"], number, 0)
    if found:
        return found
    if origin.endswith(".csv"):  # csvlog: the message is the 14th column, its quotes doubled
        for number, row in enumerate(csv.reader(io.StringIO(text)), start=1):
            if len(row) > 13:
                scan(row[13], number, 0)
        return found
    scan(text, 1, 0)
    return found


def _read_file(path: Path, query_names: set[str]) -> list[ProductionPlan]:
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            raise FidelityError(f"{path}: larger than {MAX_FILE_BYTES // (1024 * 1024)} MiB; cut the log to the plans")
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise FidelityError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    stripped = text.strip()
    if stripped.startswith(("[", "{")):
        try:
            document = json.loads(stripped)
        except ValueError:
            document = None
        if document is not None:
            plan = _plan_of(document)
            if plan is None:
                raise FidelityError(f"{path}: JSON but not an EXPLAIN (FORMAT JSON) result; export it with "
                                    "psql -XAtq -c 'EXPLAIN (FORMAT JSON) …' (see docs/production-stats.md)")
            name = path.stem if plan[1] is None or path.stem in query_names else None
            return [ProductionPlan(str(path), _parsed(plan[0], str(path)), name=name, text=plan[1])]
    if "QUERY PLAN" in text[:2000] and "+" in text[:4000]:
        raise FidelityError(f"{path}: psql's aligned output, not the plan's JSON; export with psql -XAtq "
                            "(unaligned, tuples only)")
    plans = _log_plans(text, str(path))
    if not plans:
        raise FidelityError(f"{path}: holds no EXPLAIN (FORMAT JSON) plan and no auto_explain JSON plan "
                            "(auto_explain.log_format = json); see docs/production-stats.md")
    return plans


def read_plans(paths: Sequence[Path], query_names: Iterable[str] = ()) -> tuple[list[ProductionPlan], list[str]]:
    """Every production plan in the files and directories given (directories: their files, sorted,
    hidden ones skipped), and the files read."""
    names = set(query_names)
    plans: list[ProductionPlan] = []
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files += sorted(p for p in path.rglob("*") if p.is_file() and not any(part.startswith(".") for part in p.relative_to(path).parts))
        elif path.exists():
            files.append(path)
        else:
            raise FidelityError(f"{path}: no such file or directory; give --plans a directory of EXPLAIN exports or a log")
    if not files:
        raise FidelityError(f"no plan files in {', '.join(str(p) for p in paths)}")
    for file in files:
        plans += _read_file(file, names)
    return plans, [str(f) for f in files]


def match_plans(plans: Sequence[ProductionPlan], queries: Sequence[GuardedQuery]) -> tuple[dict[str, list[ProductionPlan]], list[ProductionPlan]]:
    """Production's plans per catalog query: by file name, else by the logged text (the same statement
    whatever its values, placeholders, casts, case or layout). Also the plans that match none."""
    by_name = {q.name: q for q in queries}
    by_key: dict[str, list[str]] = {}
    by_fingerprint: dict[str, list[str]] = {}
    for query in queries:
        by_key.setdefault(statement_key(query.sql), []).append(query.name)
        by_fingerprint.setdefault(identify(query.sql).fingerprint, []).append(query.name)
    matched: dict[str, list[ProductionPlan]] = {}
    unmatched: list[ProductionPlan] = []
    for plan in plans:
        targets: list[str] = []
        if plan.name is not None and plan.name in by_name:
            targets = [plan.name]
        elif plan.text is not None:
            targets = by_key.get(statement_key(plan.text)) or by_fingerprint.get(identify(plan.text).fingerprint) or []
        if not targets:
            unmatched.append(plan)
        for name in targets:
            matched.setdefault(name, []).append(plan)
    return matched, unmatched


# --------------------------------------------------------------------------------------------------
# Comparing shapes
# --------------------------------------------------------------------------------------------------


def _same_node(a: PlanNode, b: PlanNode) -> bool:
    return a.label == b.label


def first_difference(production: PlanNode, ci: PlanNode) -> Difference | None:
    """Where the two plans first part in tree order (None: the same shape)."""

    def walk(p: PlanNode, c: PlanNode, depth: int, path: tuple[str, ...]) -> Difference | None:
        if not _same_node(p, c):
            return Difference(depth, path, p.label, c.label)
        below = path + (p.label,)
        for p_child, c_child in zip(p.children, c.children):
            found = walk(p_child, c_child, depth + 1, below)
            if found is not None:
                return found
        if len(p.children) > len(c.children):
            return Difference(depth + 1, below, p.children[len(c.children)].label, None)
        if len(c.children) > len(p.children):
            return Difference(depth + 1, below, None, c.children[len(p.children)].label)
        return None

    return walk(production, ci, 0, ())


def judge(query: GuardedQuery, ci: PlanNode | None, ci_source: str, production: Sequence[ProductionPlan]) -> Fidelity:
    """Production's dominant shape (the one most of its plans have) against CI's."""
    if not production:
        return Fidelity(query, "no production plan", ci_source, note="no production plan names or matches it")
    shapes = Counter(p.plan.signature() for p in production)
    dominant, count = sorted(shapes.items(), key=lambda item: (-item[1], item[0]))[0]
    share = count / len(production)
    representative = next(p for p in production if p.plan.signature() == dominant)
    if ci is None:
        return Fidelity(query, "no CI plan", ci_source, tuple(production), len(shapes), share,
                        production_signature=dominant, note="no baseline; run `querywarden update` or use --measure")
    difference = first_difference(representative.plan, ci)
    other = difference is not None and ci.signature() in shapes
    return Fidelity(query, "same" if difference is None else "gap", ci_source, tuple(production), len(shapes), share,
                    difference, other, ci.signature(), dominant)


def compare(queries: Sequence[GuardedQuery], ci_plans: Mapping[str, PlanNode], ci_source: str,
            plans: Sequence[ProductionPlan], files: Sequence[str] = ()) -> Report:
    matched, unmatched = match_plans(plans, queries)
    results = tuple(judge(q, ci_plans.get(q.name), ci_source, matched.get(q.name, [])) for q in queries)
    return Report(results, tuple(unmatched), tuple(files))


# --------------------------------------------------------------------------------------------------
# Showing it
# --------------------------------------------------------------------------------------------------


def _production_column(result: Fidelity) -> str:
    if not result.production:
        return "-"
    n = len(result.production)
    if n == 1:
        return "1 plan"
    return f"{n} plans, {result.shapes} shape{'s' if result.shapes > 1 else ''}"


def render(report: Report) -> str:
    ordered = sorted(report.results, key=lambda r: -r.query.calls_per_minute)
    width = max([len("query"), *(len(r.query.name) for r in ordered)])
    header = f"{'query':<{width}}  {'calls/min':>9}  {'production':<18}  fidelity"
    lines = [header, "-" * (len(header) + 30)]
    for result in ordered:
        status = {"same": "same shape", "gap": "GAP", "no production plan": "no production plan",
                  "no CI plan": "no CI plan"}[result.status]
        if result.difference is not None:
            status += f" {result.difference.describe()}"
        lines.append(f"{result.query.name:<{width}}  {result.query.calls_per_minute:>9,.0f}  "
                     f"{_production_column(result):<18}  {status}")
    for result in ordered:
        if not result.gap:
            continue
        lines += ["", f"{result.query.name}: CI's plan ({result.ci_source}) is not production's "
                      f"({len(result.production)} plan(s); {result.dominant_share:.0%} have this shape)"]
        if result.ci_matches_other:
            lines.append("  CI has one of production's rarer shapes (production plans it both ways, e.g. per parameter value)")
        lines.append("  production:")
        lines += [f"    {line}" for line in result.production_signature]
        lines.append("  CI:")
        lines += [f"    {line}" for line in result.ci_signature]
    missing = [r for r in ordered if r.status == "no CI plan"]
    for result in missing:
        lines += ["", f"{result.query.name}: {result.note}"]
    if report.unmatched:
        lines += ["", f"production plans that match no catalog query: {len(report.unmatched)}"]
        for plan in report.unmatched[:10]:
            what = plan.text if plan.text is not None else f"file named {plan.name or Path(plan.origin).stem!r}"
            lines.append(f"  {plan.origin}: {' '.join(what.split())[:100]}")
    gaps = len(report.gaps)
    compared = sum(1 for r in report.results if r.status in ("same", "gap"))
    lines += ["", f"{compared} query(ies) compared: {compared - gaps} with production's plan shape, {gaps} fidelity gap(s)"
                  + ("" if not gaps else " (CI measures a plan production does not run: make the seed more like production)")]
    return "\n".join(lines)


def to_json(report: Report) -> dict[str, Any]:
    return {
        "queries": [
            {
                "name": r.query.name,
                "status": r.status,
                "calls_per_minute": r.query.calls_per_minute,
                "ci_source": r.ci_source,
                "production_plans": len(r.production),
                "production_shapes": r.shapes,
                "difference": None if r.difference is None else {
                    "depth": r.difference.depth, "path": list(r.difference.path),
                    "production": r.difference.production, "ci": r.difference.ci,
                    "text": r.difference.describe(),
                },
                "ci_signature": list(r.ci_signature),
                "production_signature": list(r.production_signature),
            }
            for r in report.results
        ],
        "unmatched": [{"origin": p.origin, "text": p.text, "name": p.name} for p in report.unmatched],
        "gaps": len(report.gaps),
    }
