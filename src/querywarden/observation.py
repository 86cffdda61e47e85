"""What was observed of one guarded query: the record that flows from measuring to comparing.

A baseline file is an `Observation` written down (without its raw timing samples), so a freshly
measured query and its committed baseline are compared field by field.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from .plan import Buffers, PlanNode


@dataclass(frozen=True)
class Timing:
    """Wall-clock times of the plain statement (not EXPLAIN), in milliseconds.

    `probe_ms` is the median time of a fixed CPU-bound calibration query on the same connection: the
    ratio of two runs' probes says how much faster or slower the machine itself was.
    """

    median_ms: float
    min_ms: float
    p90_ms: float
    count: int
    samples_ms: tuple[float, ...] = ()
    probe_ms: float | None = None

    @classmethod
    def from_samples(cls, samples_ms: Sequence[float], probe_ms: float | None = None) -> Timing:
        if not samples_ms:
            raise ValueError("no timing samples")
        ordered = sorted(samples_ms)
        p90_index = min(len(ordered) - 1, int(round(0.9 * (len(ordered) - 1))))
        return cls(
            median_ms=statistics.median(ordered),
            min_ms=ordered[0],
            p90_ms=ordered[p90_index],
            count=len(ordered),
            samples_ms=tuple(samples_ms),
            probe_ms=probe_ms,
        )


@dataclass(frozen=True)
class Observation:
    """One query's plan, work, cost and timing, with what identifies and weights it."""

    name: str
    sql: str
    normalized_sql: str
    fingerprint: str
    calls_per_minute: float
    plan: PlanNode
    timing: Timing
    environment: Mapping[str, str] = field(default_factory=dict)
    budget_ms: float | None = None
    statement_count: int = 1
    # Why a reviewer let this query be recorded though it broke the budget (None: it did not need to).
    accepted: str | None = None
    # Why a sequential scan is fine for it (the query's reviewed exception, see GuardedQuery).
    allow_seq_scan: str | None = None
    # Planning and execution time of the one EXPLAIN ANALYZE, apart (volatile: results only, never baselines).
    planning_ms: float | None = None
    execution_ms: float | None = None

    @property
    def buffers(self) -> Buffers:
        return self.plan.buffers

    @property
    def total_cost(self) -> float:
        return self.plan.total_cost

    @property
    def signature(self) -> tuple[str, ...]:
        return self.plan.signature()


@dataclass(frozen=True)
class Unmeasured:
    """A statement that could not be measured to the end: it timed out, or it could not run at all.

    A timeout is a verdict (a runaway query blocks); any other failure means there is nothing to judge.
    """

    name: str
    message: str
    sql: str
    calls_per_minute: float
    timed_out: bool = False


Outcome = Observation | Unmeasured
