"""Verdict records: the results model every report renders and every exit code is derived from."""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass

from .observation import Observation
from .query import SourceLocation


class Verdict(str, enum.Enum):
    """Outcome for one guarded query."""

    PASS = "pass"
    IMPROVED = "improved"
    WARN = "warn"
    FAIL = "fail"
    NEW = "new"
    MISSING = "missing"
    INCOMPARABLE = "incomparable"
    ERROR = "error"


@dataclass(frozen=True)
class QueryResult:
    """The verdict on one query, why, and both sides of the comparison for reports.

    `before` is the baseline (None for a new query); `after` is this run's observation (None when the
    query is missing or could not be measured). `blocking` decides the exit code.
    """

    name: str
    verdict: Verdict
    blocking: bool
    reasons: tuple[str, ...]
    calls_per_minute: float
    before: Observation | None = None
    after: Observation | None = None
    source: SourceLocation | None = None
    extra_ms_per_minute: float | None = None
    basis: str = ""  # what the verdict rests on: a same-run A/B against the base revision, a stored baseline, ...

    @property
    def time_ratio(self) -> float | None:
        if self.before is None or self.after is None or self.before.timing.median_ms <= 0:
            return None
        return self.after.timing.median_ms / self.before.timing.median_ms


@dataclass(frozen=True)
class RunResult:
    """All query results of one run; the run blocks when any result blocks."""

    queries: tuple[QueryResult, ...]

    @property
    def blocked(self) -> bool:
        return any(result.blocking for result in self.queries)

    @property
    def load_cores(self) -> tuple[float, float]:
        """The database load of the guarded queries at their call rates, as busy cores, with the
        baselines and with this run's measurements: what production carries before and after the change."""

        def cores(side: Observation | None) -> float:
            return side.timing.median_ms * side.calls_per_minute / 60_000.0 if side is not None else 0.0

        return sum(cores(r.before) for r in self.queries), sum(cores(r.after) for r in self.queries)

    def load_text(self) -> str:
        before, after = self.load_cores
        return (
            f"projected load of the guarded queries at their call rates: {before:,.3g} → {after:,.3g} cores "
            f"({after - before:+,.3g} from this change)"
        )

    @property
    def verdict(self) -> str:
        return "fail" if self.blocked else "pass"

    @property
    def extra_ms_per_minute(self) -> float:
        """What this change adds to production's database time: regressions, and new queries whole."""
        return sum(r.extra_ms_per_minute or 0.0 for r in self.queries if r.verdict in (Verdict.FAIL, Verdict.WARN, Verdict.NEW))

    def comparisons(self) -> dict[str, int]:
        """How many verdicts rest on each kind of comparison: a same-run A/B (against the base revision
        or the baseline SQL), the stored baseline, or none (a new query judged on its own cost)."""
        tally: dict[str, int] = {}
        for result in self.queries:
            if not result.basis:
                continue
            if result.basis.startswith("the stored baseline"):
                kind = "the stored baseline"
            elif result.basis.startswith(("new", "no baseline")):
                kind = "their own cost (new)"
            else:
                kind = result.basis.split(":", 1)[0]
            tally[kind] = tally.get(kind, 0) + 1
        return tally

    def comparisons_text(self) -> str:
        return "; ".join(f"{count} on {kind}" for kind, count in self.comparisons().items())

    def counts(self) -> dict[str, int]:
        tally = {verdict.value: 0 for verdict in Verdict}
        for result in self.queries:
            tally[result.verdict.value] += 1
        return tally

    @classmethod
    def merge(cls, runs: Sequence[RunResult]) -> RunResult:
        """Join the results of several shards (CI matrix jobs, xdist workers) into one run."""
        return cls(queries=tuple(result for run in runs for result in run.queries))
