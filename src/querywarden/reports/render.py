"""Reports of a run: Markdown (PR comment, job summary), one self-contained HTML file, JSON, and
GitHub workflow-command annotations.

Everything that comes from a catalog or a database (query names, SQL, relation and index names, plan
details, reasons) is treated as hostile: Markdown output escapes it so it can neither break the table nor
inject HTML, mentions or links; the HTML report is rendered with autoescaping, carries a Content-Security-
Policy that forbids scripts and every network load, and contains no script of its own.
"""

from __future__ import annotations

import difflib
import importlib.resources
import json
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal

import jinja2
import markupsafe

from ..observation import Observation
from ..plan import PlanNode
from ..verdict import QueryResult, RunResult, Verdict
from .results import run_to_dict

Format = Literal["md", "html", "json", "github"]
FORMATS: tuple[Format, ...] = ("md", "html", "json", "github")

#: GitHub refuses comments and job summaries over 65,536 characters; stay clearly below.
MAX_MARKDOWN_CHARS = 65_000
#: The hidden marker the PR-comment workflow looks for to update its one comment in place.
COMMENT_MARKER = "<!-- querywarden-report -->"
#: The Content-Security-Policy of the HTML report: no scripts, no fetches, inline styles and data: images only.
HTML_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"

_SEVERITY = {
    Verdict.FAIL: 0,
    Verdict.ERROR: 1,
    Verdict.INCOMPARABLE: 2,
    Verdict.MISSING: 3,
    Verdict.WARN: 4,
    Verdict.NEW: 5,
    Verdict.IMPROVED: 6,
    Verdict.PASS: 7,
}
_ICONS = {
    Verdict.FAIL: "❌",
    Verdict.ERROR: "💥",
    Verdict.INCOMPARABLE: "❓",
    Verdict.MISSING: "❓",
    Verdict.WARN: "⚠️",
    Verdict.NEW: "🆕",
    Verdict.IMPROVED: "✅",
    Verdict.PASS: "✔️",
}
# Per-section caps inside the Markdown details, so one enormous query cannot starve the others.
_MAX_DIFF_LINES = 150
_MAX_DETAIL_CHARS = 12_000
_MAX_NAME_CHARS = 200
_MAX_REASONS_CHARS = 600


def render_report(run: RunResult, fmt: Format) -> str:
    """The report of `run` in one of FORMATS."""
    if fmt == "md":
        return render_markdown(run)
    if fmt == "html":
        return render_html(run)
    if fmt == "json":
        return json.dumps(run_to_dict(run), indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    if fmt == "github":
        return render_github(run)
    raise ValueError(f"unknown report format {fmt!r}; choose one of {', '.join(FORMATS)}")


# --------------------------------------------------------------------------------------------------
# Shared pieces: ordering, number formatting, the plan diff


def ordered(results: Iterable[QueryResult]) -> list[QueryResult]:
    """Most urgent first: blocking results, then by verdict severity, then by extra time, then by name."""
    return sorted(
        results,
        key=lambda r: (not r.blocking, _SEVERITY[r.verdict], -(r.extra_ms_per_minute or 0.0), r.name),
    )


def format_ms(value: float) -> str:
    if value < 10:
        return f"{value:.2f} ms"
    if value < 100:
        return f"{value:.1f} ms"
    return f"{value:,.0f} ms"


def format_count(value: float) -> str:
    return f"{value:,.0f}"


def format_cost(value: float) -> str:
    return f"{value:,.2f}" if value < 100 else f"{value:,.0f}"


def format_ratio(before: float, after: float) -> str:
    """'×93' for growth, '÷60' for a large shrink, '×0.85' for a small one; '' when undefined."""
    if before <= 0 or after < 0:
        return ""
    ratio = after / before
    if ratio >= 10:
        return f"×{ratio:,.0f}"
    if 0 < ratio <= 0.1:
        return f"÷{1 / ratio:,.0f}"
    if ratio == 0:
        return "×0"
    return f"×{ratio:.2f}"


def _headline_parts(run: RunResult) -> tuple[str, str, str]:
    """(icon, title, subtitle) shared by the Markdown and HTML headlines."""
    total = len(run.queries)
    blocking = sum(1 for r in run.queries if r.blocking)
    noun = "query" if total == 1 else "queries"
    if total == 0:
        return "⚠️", "nothing was guarded", "The results hold no queries: check the catalog and the test selection."
    if run.blocked:
        title = f"merge blocked: {blocking} of {total} {noun} {'blocks' if blocking == 1 else 'block'}"
        icon = "❌"
    else:
        title = f"passed: {total} {noun} guarded, none blocks the merge"
        icon = "✅"
    extra = run.extra_ms_per_minute
    if extra > 0:
        subtitle = (
            f"Estimated extra database time: +{format_ms(extra)} per minute "
            "(regressed and new queries at their declared call rates)."
        )
    else:
        subtitle = "Estimated extra database time: none."
    load = run.load_text()
    subtitle += f" {load[0].upper()}{load[1:]}."
    return icon, title, subtitle


def _counts_text(run: RunResult) -> str:
    counts = run.counts()
    return " · ".join(f"{count} {verdict.value}" for verdict in _SEVERITY if (count := counts[verdict.value]))


PlanChange = Literal["same", "removed", "added", "changed"]


@dataclass(frozen=True)
class PlanLine:
    """One node of a plan tree as shown in a report, with how it differs from the other side."""

    depth: int
    node: PlanNode
    change: PlanChange
    other: PlanNode | None = None  # the matched node on the other side, for same/changed


def own_blocks(node: PlanNode) -> int:
    """Blocks a node touched itself: EXPLAIN's buffer counts include those of the node's children."""
    return max(0, node.buffers.total - sum(child.buffers.total for child in node.children))


def _node_worse(before: PlanNode, after: PlanNode) -> bool:
    """Same shape but clearly more work of its own: a new spill, or at least twice the blocks and 100 more."""
    if after.spill and not before.spill:
        return True
    mine, theirs = own_blocks(after), own_blocks(before)
    return mine - theirs >= 100 and mine >= 2 * max(theirs, 1)


def plan_diff(before: PlanNode | None, after: PlanNode | None) -> tuple[list[PlanLine], list[PlanLine]]:
    """Both plan trees as lines, matched by shape: nodes only on one side are removed/added."""
    left = list(before.walk()) if before is not None else []
    right = list(after.walk()) if after is not None else []
    if not left or not right:
        return ([PlanLine(d, n, "same") for d, n in left], [PlanLine(d, n, "same") for d, n in right])
    keys_left = [f"{d}:{n.label}" for d, n in left]
    keys_right = [f"{d}:{n.label}" for d, n in right]
    out_left: list[PlanLine] = []
    out_right: list[PlanLine] = []
    matcher = difflib.SequenceMatcher(a=keys_left, b=keys_right, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            for (dl, nl), (dr, nr) in zip(left[i1:i2], right[j1:j2]):
                change: PlanChange = "changed" if _node_worse(nl, nr) else "same"
                out_left.append(PlanLine(dl, nl, change, nr))
                out_right.append(PlanLine(dr, nr, change, nl))
        else:
            out_left.extend(PlanLine(d, n, "removed") for d, n in left[i1:i2])
            out_right.extend(PlanLine(d, n, "added") for d, n in right[j1:j2])
    return out_left, out_right


def _merged_plan_lines(before: PlanNode | None, after: PlanNode | None) -> list[tuple[str, int, PlanNode, PlanNode | None]]:
    """One interleaved listing for a textual diff: (marker, depth, node, baseline node when matched)."""
    left = list(before.walk()) if before is not None else []
    right = list(after.walk()) if after is not None else []
    if not left:
        return [(" ", d, n, None) for d, n in right]
    if not right:
        return [(" ", d, n, None) for d, n in left]
    keys_left = [f"{d}:{n.label}" for d, n in left]
    keys_right = [f"{d}:{n.label}" for d, n in right]
    lines: list[tuple[str, int, PlanNode, PlanNode | None]] = []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(a=keys_left, b=keys_right, autojunk=False).get_opcodes():
        if tag == "equal":
            for (_, nl), (dr, nr) in zip(left[i1:i2], right[j1:j2]):
                lines.append(("!" if _node_worse(nl, nr) else " ", dr, nr, nl))
        else:
            lines.extend(("-", d, n, None) for d, n in left[i1:i2])
            lines.extend(("+", d, n, None) for d, n in right[j1:j2])
    return lines


def _one_line(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def _node_numbers(node: PlanNode, baseline: PlanNode | None) -> str:
    if baseline is None:
        text = f"cost {format_cost(node.total_cost)}, {format_count(node.buffers.total)} buffers"
    else:
        text = (
            f"cost {format_cost(baseline.total_cost)} → {format_cost(node.total_cost)}, "
            f"buffers {format_count(baseline.buffers.total)} → {format_count(node.buffers.total)}"
        )
    if node.spill:
        text += f", {node.spill}"
    return text


# --------------------------------------------------------------------------------------------------
# Markdown

_MD_ESCAPES = {
    "&": "&amp;",
    "<": "&lt;",
    ">": "&gt;",
    '"': "&quot;",
    "'": "&#39;",
    "|": "&#124;",
    "`": "&#96;",
    "\\": "&#92;",
    "*": "&#42;",
    "_": "&#95;",
    "[": "&#91;",
    "]": "&#93;",
    "~": "&#126;",
    "@": "&#64;",
    "#": "&#35;",
    "$": "&#36;",
    "!": "&#33;",
}
_MD_SPECIAL = re.compile("[" + re.escape("".join(_MD_ESCAPES)) + "]")


def md_text(text: str, limit: int | None = None) -> str:
    """Inline-safe Markdown for untrusted text: one line, every Markdown/HTML-active character an entity.

    Pipes cannot split a table cell, backticks cannot open code spans, `<` cannot open HTML, `@` cannot
    mention anyone and `$` cannot start math. Truncation happens before escaping so no entity is cut.
    """
    return _md_escape(_md_line(text, limit))


def _md_line(text: str, limit: int | None) -> str:
    text = _one_line(text)
    if limit is not None and len(text) > limit:
        text = text[: limit - 1] + "…"
    return text


def _md_escape(text: str) -> str:
    return _MD_SPECIAL.sub(lambda m: _MD_ESCAPES[m.group(0)], text)


# A querywarden command quoted in a reason (`querywarden update`, `querywarden update --prune`, ...).
_COMMAND_SPAN = re.compile(r"`(querywarden(?: [^`]*)?)`")


def md_reason(text: str, limit: int | None = None) -> str:
    """A reason as inline-safe Markdown: like `md_text`, except that the querywarden commands the reason
    quotes in backticks become inline code, so a reviewer reads `querywarden update` and not the entities.

    Only a span that names a querywarden command becomes code, as a `<code>` element whose content is
    escaped like all other text: a reason's untrusted parts (query and relation names, database errors)
    cannot open, close or split a code span, nor inject HTML; any other backtick stays a literal one.
    """
    text = _md_line(text, limit)
    parts: list[str] = []
    position = 0
    for span in _COMMAND_SPAN.finditer(text):
        parts += [_md_escape(text[position : span.start()]), f"<code>{_md_escape(span.group(1))}</code>"]
        position = span.end()
    parts.append(_md_escape(text[position:]))
    return "".join(parts)


def _fence(body: str, info: str) -> str:
    """A fenced code block whose fence is longer than any backtick run inside, so the body cannot close it."""
    longest = max((len(run) for run in re.findall(r"`+", body)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{info}\n{body}\n{fence}"


def _cap_lines(lines: list[str], what: str) -> list[str]:
    if len(lines) <= _MAX_DIFF_LINES:
        return lines
    return lines[:_MAX_DIFF_LINES] + [f"… {len(lines) - _MAX_DIFF_LINES} more lines of the {what} cut"]


def _code_lines(text: str) -> list[str]:
    # Control characters other than tab become visible, so nothing can hide in a code block.
    cleaned = re.sub(r"[\x00-\x08\x0b-\x1f\x7f]", "\N{REPLACEMENT CHARACTER}", text.replace("\r\n", "\n"))
    return cleaned.split("\n")


def sql_diff_lines(before: Observation | None, after: Observation | None) -> list[str] | None:
    """A unified diff of the two normalized SQL texts, or None when there is nothing to compare."""
    if before is None or after is None:
        return None
    return list(
        difflib.unified_diff(
            _code_lines(before.normalized_sql),
            _code_lines(after.normalized_sql),
            fromfile="baseline",
            tofile="this run",
            lineterm="",
        )
    )


def _plan_diff_text(before: PlanNode | None, after: PlanNode | None) -> list[str]:
    lines = []
    for marker, depth, node, baseline in _merged_plan_lines(before, after):
        label = _one_line(node.label)
        lines.append(f"{marker} {'  ' * depth}{label}  ({_one_line(_node_numbers(node, baseline))})")
    return lines


def _metric_cell(before: float | None, after: float | None, fmt: Any) -> str:
    if before is None and after is None:
        return "—"
    if before is None:
        return f"— → {fmt(after)}"
    if after is None:
        return f"{fmt(before)} → —"
    ratio = format_ratio(before, after)
    return f"{fmt(before)} → {fmt(after)}" + (f" ({ratio})" if ratio and before != after else "")


def _table_row(result: QueryResult) -> str:
    before, after = result.before, result.after
    verdict = f"{_ICONS[result.verdict]} **{result.verdict.value}**" + (" (blocking)" if result.blocking else "")
    median = _metric_cell(
        before.timing.median_ms if before else None, after.timing.median_ms if after else None, format_ms
    )
    buffers = _metric_cell(
        float(before.buffers.total) if before else None, float(after.buffers.total) if after else None, format_count
    )
    cost = _metric_cell(before.total_cost if before else None, after.total_cost if after else None, format_cost)
    reasons = "<br>".join(md_reason(reason, _MAX_REASONS_CHARS) for reason in result.reasons) or "—"
    if result.basis:
        reasons += f"<br>_compared: {md_reason(result.basis, _MAX_REASONS_CHARS)}_"
    cells = [
        verdict,
        f"<code>{md_text(result.name, _MAX_NAME_CHARS)}</code>",
        format_count(result.calls_per_minute),
        median,
        buffers,
        cost,
        reasons,
    ]
    return "| " + " | ".join(cells) + " |"


_TABLE_HEAD = "| Verdict | Query | Calls/min | Median time | Buffers | Cost | Why |\n|---|---|--:|---|---|---|---|"


def _details(result: QueryResult) -> str | None:
    before, after = result.before, result.after
    if before is None and after is None:
        return None
    parts = [
        f"<details><summary><code>{md_text(result.name, _MAX_NAME_CHARS)}</code>: "
        f"{result.verdict.value}, SQL and plan</summary>",
        "",
    ]
    if result.source is not None:
        parts += [f"Source: <code>{md_text(str(result.source), 300)}</code>", ""]
    diff = sql_diff_lines(before, after)
    if diff is None:
        only = after if after is not None else before
        assert only is not None
        side = "this run" if after is not None else "baseline"
        parts += [f"SQL ({side}):", "", _fence("\n".join(_cap_lines(_code_lines(only.normalized_sql), "SQL")), "sql"), ""]
    elif diff:
        parts += ["SQL diff (baseline → this run):", "", _fence("\n".join(_cap_lines(diff, "SQL diff")), "diff"), ""]
    else:
        parts += ["SQL unchanged.", ""]
    plan_lines = _plan_diff_text(before.plan if before else None, after.plan if after else None)
    title = "Plan (baseline → this run; - removed, + added, ! more work):" if before and after else "Plan:"
    parts += [title, "", _fence("\n".join(_cap_lines(plan_lines, "plan")), "diff"), "", "</details>", ""]
    text = "\n".join(parts)
    if len(text) > _MAX_DETAIL_CHARS:
        # Far too long even after the line caps (very long lines): keep the summary and say so.
        text = "\n".join(parts[:2]) + "\n_SQL and plan are too long to show here; see the HTML report._\n\n</details>\n"
    return text


def render_markdown(run: RunResult, limit: int = MAX_MARKDOWN_CHARS) -> str:
    """The PR comment / job summary. Never longer than `limit` characters: details go first, then rows."""
    icon, title, subtitle = _headline_parts(run)
    head_lines = [COMMENT_MARKER, f"## {icon} querywarden: {title}", "", subtitle]
    counts = _counts_text(run)
    if counts:
        head_lines += ["", counts]
    if run.comparisons():
        head_lines += ["", f"Verdicts rest on: {md_text(run.comparisons_text(), _MAX_REASONS_CHARS)}."]
    accepted = [(r.name, r.before.accepted) for r in ordered(run.queries) if r.before is not None and r.before.accepted]
    if accepted:  # a cost someone accepted stays in sight of every later review
        head_lines += ["", "Recorded over the budget by acceptance:"]
        head_lines += [f"- <code>{md_text(name, _MAX_NAME_CHARS)}</code>: {md_text(why, _MAX_REASONS_CHARS)}" for name, why in accepted]
    head = "\n".join(head_lines) + "\n"
    shown = [r for r in ordered(run.queries) if r.verdict is not Verdict.PASS]
    passed = len(run.queries) - len(shown)
    if not shown:
        tail = ""
        if passed:
            tail = "\nThe guarded query matches its baseline.\n" if passed == 1 else f"\nAll {passed} guarded queries match their baselines.\n"
        return _clip(head + tail, limit)
    rows = [_table_row(r) for r in shown]
    pass_note = f"\n{passed} more {'query' if passed == 1 else 'queries'} passed unchanged.\n" if passed else ""
    details = [d for d in (_details(r) for r in shown) if d is not None]

    def assemble(n_rows: int, n_details: int) -> str:
        out = [head, "\n", _TABLE_HEAD, "\n", "\n".join(rows[:n_rows]), "\n"]
        cut_rows = len(rows) - n_rows
        if cut_rows:
            out.append(
                f"\n_{cut_rows} more non-passing {'query was' if cut_rows == 1 else 'queries were'} cut from this "
                f"table to keep it under {limit:,} characters; the HTML report and results JSON list them all._\n"
            )
        out.append(pass_note)
        if n_details:
            out.append("\n### Details\n\n")
            out.extend(details[:n_details])
        cut_details = len(details) - n_details
        if cut_details:
            out.append(
                f"\n_SQL and plan details of {cut_details} of {len(details)} queries were cut to keep this report "
                f"under {limit:,} characters; the HTML report has all of them._\n"
            )
        return "".join(out)

    n_rows, n_details = len(rows), len(details)
    text = assemble(n_rows, n_details)
    if len(text) <= limit:
        return text
    # Drop details from the least urgent end until it fits (binary search: sizes grow monotonically).
    low, high = 0, n_details
    while low < high:
        mid = (low + high + 1) // 2
        if len(assemble(n_rows, mid)) <= limit:
            low = mid
        else:
            high = mid - 1
    if len(assemble(n_rows, low)) <= limit:
        return assemble(n_rows, low)
    low, high = 0, n_rows
    while low < high:
        mid = (low + high + 1) // 2
        if len(assemble(mid, 0)) <= limit:
            low = mid
        else:
            high = mid - 1
    return _clip(assemble(low, 0), limit)


def _clip(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    note = "\n\n_Report cut at the size limit._\n"
    return text[: limit - len(note)] + note


# --------------------------------------------------------------------------------------------------
# HTML


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    count: int
    low_ms: float
    high_ms: float


@dataclass(frozen=True)
class Histogram:
    """Timing samples of this run as an SVG histogram, with the baseline's median marked."""

    width: int
    height: int
    plot_top: int
    plot_bottom: int
    bars: tuple[Bar, ...]
    median_x: float
    median_ms: float
    baseline_x: float | None
    baseline_ms: float | None
    ticks: tuple[tuple[float, str], ...]
    samples: int

    def anchor(self, x: float) -> str:
        """Text anchor for a marker label at `x`: labels right of the middle extend leftwards."""
        return "end" if x > self.width * 0.6 else "start"

    def label_x(self, x: float) -> float:
        return x - 4 if self.anchor(x) == "end" else x + 4


def histogram(samples_ms: Sequence[float], baseline_median_ms: float | None, median_ms: float) -> Histogram | None:
    """Lay out a histogram of `samples_ms` (None when there are none to draw)."""
    if not samples_ms:
        return None
    width, height, left, right, top, bottom = 560, 164, 10, 550, 34, 134
    high = max(max(samples_ms), baseline_median_ms or 0.0, median_ms) * 1.05
    if high <= 0:
        high = 1.0
    bins = max(10, min(60, 2 * len(samples_ms)))
    step = high / bins
    counts = [0] * bins
    for sample in samples_ms:
        counts[min(bins - 1, max(0, int(sample / step)))] += 1
    tallest = max(counts)
    scale = (right - left) / high
    bars = []
    for index, count in enumerate(counts):
        if not count:
            continue
        bar_height = (bottom - top) * count / tallest
        bars.append(
            Bar(
                x=round(left + index * step * scale, 2),
                y=round(bottom - bar_height, 2),
                width=round(max(step * scale - 1, 1), 2),
                height=round(bar_height, 2),
                count=count,
                low_ms=index * step,
                high_ms=(index + 1) * step,
            )
        )
    ticks = tuple((round(left + fraction * (right - left), 2), format_ms(fraction * high)) for fraction in (0, 0.25, 0.5, 0.75, 1))
    return Histogram(
        width=width,
        height=height,
        plot_top=top,
        plot_bottom=bottom,
        bars=tuple(bars),
        median_x=round(left + median_ms * scale, 2),
        median_ms=median_ms,
        baseline_x=None if baseline_median_ms is None else round(left + baseline_median_ms * scale, 2),
        baseline_ms=baseline_median_ms,
        ticks=ticks,
        samples=len(samples_ms),
    )


_EXPLAIN_KEYS = (
    ("relation", "Relation Name"),
    ("index", "Index Name"),
    ("join_type", "Join Type"),
    ("strategy", "Strategy"),
    ("parent_relationship", "Parent Relationship"),
)


def plan_to_explain(node: PlanNode) -> dict[str, Any]:
    """The plan in PostgreSQL's EXPLAIN (FORMAT JSON) node shape, for pasting into a plan visualiser.

    Only what querywarden keeps is there: shared blocks are hit + read together, and per-node times
    are absent (they are volatile and were never stored).
    """
    data: dict[str, Any] = {"Node Type": node.node_type}
    for attribute, key in _EXPLAIN_KEYS:
        value = getattr(node, attribute)
        if value is not None:
            data[key] = value
    data.update(
        {
            "Total Cost": node.total_cost,
            "Plan Rows": node.plan_rows,
            "Actual Rows": node.actual_rows,
            "Actual Loops": node.actual_loops,
            "Shared Hit Blocks": node.buffers.shared,
            "Temp Read Blocks": node.buffers.temp_read,
            "Temp Written Blocks": node.buffers.temp_written,
            "Local Hit Blocks": node.buffers.local,
        }
    )
    for key, value in node.detail:
        data[key] = value
    if node.children:
        data["Plans"] = [plan_to_explain(child) for child in node.children]
    return data


def explain_json(observation: Observation) -> str:
    document = [{"Plan": plan_to_explain(observation.plan), "Execution Time": observation.timing.median_ms}]
    return json.dumps(document, indent=1, ensure_ascii=False)


def _element_text(text: str) -> markupsafe.Markup:
    """Escape text for element content (<pre>, <textarea>): only &, < and > matter there, so JSON keeps
    its quotes readable and the file stays small. `<` escaped means no `</textarea>` can end the element."""
    return markupsafe.Markup(text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;"))


@dataclass(frozen=True)
class Metric:
    label: str
    before: str
    after: str
    ratio: str


@dataclass(frozen=True)
class Card:
    """Everything the HTML template shows of one query, pre-formatted."""

    anchor: str
    result: QueryResult
    icon: str
    metrics: tuple[Metric, ...]
    sql_diff: tuple[tuple[str, str], ...] | None  # (css class, line)
    sql_only: str | None
    sql_only_side: str
    plan_before: tuple[PlanLine, ...]
    plan_after: tuple[PlanLine, ...]
    histogram: Histogram | None
    explain_before: str | None
    explain_after: str | None


def _metrics(before: Observation | None, after: Observation | None) -> tuple[Metric, ...]:
    def row(label: str, b: float | None, a: float | None, fmt: Any) -> Metric:
        ratio = format_ratio(b, a) if b is not None and a is not None and b != a else ""
        return Metric(label, "—" if b is None else fmt(b), "—" if a is None else fmt(a), ratio)

    return (
        row("median time", before.timing.median_ms if before else None, after.timing.median_ms if after else None, format_ms),
        row("p90 time", before.timing.p90_ms if before else None, after.timing.p90_ms if after else None, format_ms),
        row("min time", before.timing.min_ms if before else None, after.timing.min_ms if after else None, format_ms),
        row(
            "buffers",
            float(before.buffers.total) if before else None,
            float(after.buffers.total) if after else None,
            format_count,
        ),
        row(
            "temp blocks",
            float(before.buffers.temp) if before else None,
            float(after.buffers.temp) if after else None,
            format_count,
        ),
        row("cost", before.total_cost if before else None, after.total_cost if after else None, format_cost),
        row(
            "statements",
            float(before.statement_count) if before else None,
            float(after.statement_count) if after else None,
            format_count,
        ),
    )


def _sql_diff_classes(lines: list[str]) -> tuple[tuple[str, str], ...]:
    classified = []
    for line in lines:
        if line.startswith(("+++", "---")):
            css = "file"
        elif line.startswith("@@"):
            css = "hunk"
        elif line.startswith("+"):
            css = "add"
        elif line.startswith("-"):
            css = "del"
        else:
            css = "ctx"
        classified.append((css, line))
    return tuple(classified)


def _card(index: int, result: QueryResult) -> Card:
    before, after = result.before, result.after
    diff = sql_diff_lines(before, after)
    only = after if after is not None else before
    plan_before, plan_after = plan_diff(before.plan if before else None, after.plan if after else None)
    samples = after.timing.samples_ms if after else ()
    return Card(
        anchor=f"q{index}",
        result=result,
        icon=_ICONS[result.verdict],
        metrics=_metrics(before, after),
        sql_diff=None if diff is None else _sql_diff_classes(diff),
        sql_only=None if diff is not None or only is None else only.normalized_sql,
        sql_only_side="this run" if after is not None else "baseline",
        plan_before=tuple(plan_before),
        plan_after=tuple(plan_after),
        histogram=histogram(samples, before.timing.median_ms if before else None, after.timing.median_ms)
        if after
        else None,
        # A passing query's baseline plan has the same shape as this run's: show one of them.
        explain_before=explain_json(before) if before and result.verdict is not Verdict.PASS else None,
        explain_after=explain_json(after) if after else None,
    )


def _load_template(name: str) -> str:
    """Template source with each line's indentation removed: the templates stay readable, the reports
    stay small (indentation was a sixth of a 500-query report). Only template text is touched, never
    rendered values, so <pre> and <textarea> contents keep their whitespace."""
    source = importlib.resources.files("querywarden.reports").joinpath("templates", name).read_text(encoding="utf-8")
    return "\n".join(line.lstrip(" ") for line in source.split("\n"))


@lru_cache(maxsize=1)
def _environment() -> jinja2.Environment:
    environment = jinja2.Environment(
        loader=jinja2.FunctionLoader(_load_template),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    environment.filters["ms"] = format_ms
    environment.filters["count"] = format_count
    environment.filters["element_text"] = _element_text
    return environment


def render_html(run: RunResult) -> str:
    """One self-contained HTML file: no scripts, no external resources, everything escaped."""
    icon, title, subtitle = _headline_parts(run)
    results = ordered(run.queries)
    cards = [_card(index, result) for index, result in enumerate(results)]
    template = _environment().get_template("report.html.j2")
    return template.render(
        csp=HTML_CSP,
        icon=icon,
        title=title,
        subtitle=subtitle,
        blocked=run.blocked,
        counts=[(v.value, n) for v in _SEVERITY if (n := run.counts()[v.value])],
        total=len(run.queries),
        cards=[c for c in cards if c.result.verdict is not Verdict.PASS],
        passed=[c for c in cards if c.result.verdict is Verdict.PASS],
        all_cards=cards,
    )


# --------------------------------------------------------------------------------------------------
# GitHub workflow commands


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def _annotation_path(path: str) -> str:
    """Annotations attach only to paths relative to the checkout: make absolute ones relative when we can."""
    workspace = os.environ.get("GITHUB_WORKSPACE")
    if workspace and os.path.isabs(path):
        relative = os.path.relpath(path, workspace)
        if not relative.startswith(".."):
            return relative.replace(os.sep, "/")
    return path


def _annotation_message(result: QueryResult) -> str:
    before, after = result.before, result.after
    lines = list(result.reasons) or [f"verdict {result.verdict.value}"]
    if result.basis:
        lines.append(f"compared: {result.basis}")
    if before is not None and after is not None:
        lines.append(
            f"median {format_ms(before.timing.median_ms)} → {format_ms(after.timing.median_ms)}, "
            f"buffers {format_count(before.buffers.total)} → {format_count(after.buffers.total)}, "
            f"cost {format_cost(before.total_cost)} → {format_cost(after.total_cost)}"
        )
    if result.extra_ms_per_minute:
        lines.append(
            f"about +{format_ms(result.extra_ms_per_minute)} of database time per minute "
            f"at {format_count(result.calls_per_minute)} calls/min"
        )
    return "\n".join(lines)


def annotation(result: QueryResult) -> str | None:
    """The workflow command for one result: ::error when it blocks, ::warning for warn (and for a
    fail or error that was configured not to block); nothing for the rest."""
    if result.blocking:
        level = "error"
    elif result.verdict in (Verdict.WARN, Verdict.FAIL, Verdict.ERROR):
        level = "warning"
    else:
        return None
    properties = []
    if result.source is not None:
        properties.append(f"file={_escape_property(_annotation_path(result.source.path))}")
        properties.append(f"line={result.source.line}")
    title = f"querywarden: {result.name} {result.verdict.value}" + (" (blocking)" if result.blocking else "")
    properties.append(f"title={_escape_property(title)}")
    return f"::{level} {','.join(properties)}::{_escape_data(_annotation_message(result))}"


def render_github(run: RunResult) -> str:
    """Annotation lines, most urgent first (GitHub shows only the first few of each level per step)."""
    lines = [line for line in (annotation(r) for r in ordered(run.queries)) if line is not None]
    return "".join(line + "\n" for line in lines)
