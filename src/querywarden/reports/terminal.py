"""The terminal report: one line per query, the reasons under anything that is not a plain pass."""

from __future__ import annotations

from ..verdict import QueryResult, RunResult, Verdict

_MARK = {
    Verdict.PASS: "pass",
    Verdict.IMPROVED: "improved",
    Verdict.WARN: "WARN",
    Verdict.FAIL: "FAIL",
    Verdict.NEW: "NEW",
    Verdict.MISSING: "missing",
    Verdict.INCOMPARABLE: "INCOMPARABLE",
    Verdict.ERROR: "ERROR",
}


def _figures(result: QueryResult) -> str:
    side = result.after or result.before
    if side is None:
        return ""
    return f"{side.timing.median_ms:9.3f} ms {side.buffers.total:>9,} buf"


def query_line(result: QueryResult) -> str:
    mark = _MARK[result.verdict] + (" (blocks)" if result.blocking and result.verdict != Verdict.FAIL else "")
    return f"{mark:<22} {result.name:<32} {_figures(result)} {result.calls_per_minute:>9,.0f}/min"


def terminal(run: RunResult) -> str:
    lines = []
    for result in run.queries:
        lines.append(query_line(result))
        if result.verdict != Verdict.PASS or result.blocking:
            lines.extend(f"    - {reason}" for reason in result.reasons)
            if result.basis:
                lines.append(f"    - compared: {result.basis}")
    counts = ", ".join(f"{count} {name}" for name, count in run.counts().items() if count)
    blocking = sum(1 for r in run.queries if r.blocking)
    if run.blocked:
        lines.append(f"querywarden: BLOCKED: {blocking} of {len(run.queries)} queries block ({counts})")
    else:
        lines.append(f"querywarden: passed: {len(run.queries)} queries ({counts})")
    lines.append(f"querywarden: {run.load_text()}")
    if run.comparisons():
        lines.append(f"querywarden: verdicts rest on: {run.comparisons_text()}")
    return "\n".join(lines)
