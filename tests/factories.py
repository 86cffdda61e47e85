"""Hand-built observations for tests of comparing and reporting (no database needed for those)."""

from __future__ import annotations

from querywarden.fingerprint import identify
from querywarden.observation import Observation, Timing
from querywarden.plan import Buffers, PlanNode


def index_plan(blocks: int = 4, cost: float = 8.44, relation: str = "time_entries") -> PlanNode:
    return PlanNode(
        node_type="Index Scan",
        relation=relation,
        index=f"{relation}_user_idx",
        total_cost=cost,
        plan_rows=1,
        actual_rows=1,
        buffers=Buffers(shared=blocks),
    )


def seq_plan(blocks: int = 16_396, cost: float = 20_834.0, relation: str = "time_entries") -> PlanNode:
    return PlanNode(
        node_type="Seq Scan",
        relation=relation,
        total_cost=cost,
        plan_rows=1,
        actual_rows=1,
        buffers=Buffers(shared=blocks),
    )


def observation(
    name: str = "running_timer",
    *,
    plan: PlanNode | None = None,
    median_ms: float = 0.05,
    spread: float = 0.01,
    calls: float = 12_000,
    sql: str = "SELECT id FROM time_entries WHERE user_id = %(user_id)s",
    environment: dict[str, str] | None = None,
    budget_ms: float | None = None,
    statements: int = 1,
) -> Observation:
    samples = tuple(median_ms + spread * (i - 3) / 3 for i in range(7))
    identity = identify(sql)  # what a measurement records, so a store's checks accept it as written
    return Observation(
        name=name,
        sql=sql,
        normalized_sql=identity.normalized,
        fingerprint=identity.fingerprint,
        calls_per_minute=calls,
        plan=plan or index_plan(),
        timing=Timing.from_samples(samples),
        environment=environment or {"postgres_major": "15", "block_size": "8192", "work_mem": "4MB"},
        budget_ms=budget_ms,
        statement_count=statements,
    )
