"""The two policies a run follows: how hard to measure (`MeasureSettings`) and how to judge (`Policy`).

Plain values, no database: the configuration resolves them, the engine measures by one and the judge
decides by the other. Values no run could honour (a zero timeout, no samples) are refused here, once,
whichever shell they came from.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from .errors import ConfigError

# Planner inputs pinned by default so plans do not depend on the machine running the check; each can
# be overridden (or set to match production) with [tool.querywarden.settings].
DEFAULT_PINNED_SETTINGS: Mapping[str, str] = {
    "effective_cache_size": "4GB",
    "jit": "off",
    "max_parallel_workers_per_gather": "0",
    "random_page_cost": "4",
    "seq_page_cost": "1",
    "work_mem": "4MB",
}


@dataclass(frozen=True)
class MeasureSettings:
    """How hard to measure: warm-ups, timing samples, time cap, timeout and pinned settings."""

    statement_timeout_ms: int = 30_000
    warmup: int = 2
    min_samples: int = 7
    max_samples: int = 40
    time_cap_s: float = 1.5
    pinned: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_PINNED_SETTINGS))
    search_path: str = '"$user", public'
    # Whole-run cap in seconds (0: none). Queries left when it is reached are not measured: the run fails.
    max_run_s: float = 0.0
    # Keep literal values (bound parameters included) in plan details; off by default, as they can be personal data.
    store_params: bool = False
    # Measure on the DSN's own database as the DSN's user when no clone or restricted role can be had.
    # Untrusted SQL then runs with that user's privileges: an explicit, warned opt-in.
    in_place: bool = False

    def __post_init__(self) -> None:
        def refuse(key: str, value: object, need: str) -> None:
            raise ConfigError(f"`{key}` must be {need}, not {value!r}")

        if self.statement_timeout_ms <= 0:
            refuse("statement-timeout-ms", self.statement_timeout_ms, "a positive number of milliseconds (0 would let a slow query hang the run)")
        if self.warmup < 0:
            refuse("warmup", self.warmup, "0 or more")
        if self.min_samples < 1:
            refuse("min-samples", self.min_samples, "at least 1")
        if self.max_samples < self.min_samples:
            refuse("max-samples", self.max_samples, f"at least min-samples ({self.min_samples})")
        if not (math.isfinite(self.time_cap_s) and self.time_cap_s > 0):
            refuse("time-cap-s", self.time_cap_s, "a positive number of seconds")
        if not (math.isfinite(self.max_run_s) and self.max_run_s >= 0):
            refuse("max-run-seconds", self.max_run_s, "a number of seconds >= 0 (0: no cap)")
        governed = sorted(name for name in self.pinned if name.lower() in _GOVERNED_BY_QUERYWARDEN)
        if governed:
            raise ConfigError(
                f"[tool.querywarden.settings] may not set {', '.join(governed)}: querywarden sets it itself "
                "(use `statement-timeout-ms` for the statement timeout)"
            )


# Session settings querywarden owns: pinned settings are applied after them and would override them.
_GOVERNED_BY_QUERYWARDEN = frozenset(
    {"statement_timeout", "lock_timeout", "idle_in_transaction_session_timeout", "transaction_timeout",
     "search_path", "default_transaction_read_only", "role", "session_authorization"}
)


@dataclass(frozen=True)
class Policy:
    """Thresholds that turn differences into verdicts, and how the calling shell's users refresh.

    `refresh`, `prune` and `accept` are the words for "re-record this baseline", "delete baselines
    whose query is gone" and "record this costly query anyway, saying why" in the shell that judges
    (the CLI's commands, the plugin's flags), so verdicts tell each user what to type; `accept` may
    hold `{name}`.
    """

    hot_calls_per_minute: float = 1000.0
    extra_ms_per_minute_budget: float = 1000.0
    buffers_tolerance: float = 0.20
    buffers_floor: int = 8
    cost_tolerance: float = 0.25
    time_tolerance: float = 0.30
    time_floor_ms: float = 0.5
    stored_time_block_ratio: float = 2.0
    large_relation_blocks: int = 1000
    # The production database a new query is judged against, and what one query may take of it: a
    # query that alone keeps half a core busy is a hot spot someone should have looked at.
    production_cores: float = 16.0
    query_cores_budget: float = 0.5
    # What one change may add to production, all its regressions and new queries together.
    change_cores_budget: float = 1.0
    # A statement issued this often in one call of a path is an N+1 loop, judged on its first sight.
    loop_statements: int = 10
    strict: bool = False
    refresh: str = "a baseline refresh"
    prune: str = "a baseline prune"
    accept: str = "an acceptance with its reason"


# Policy fields that are not thresholds: set by the shell, never by [tool.querywarden].
POLICY_WORDING = ("strict", "refresh", "prune", "accept")
