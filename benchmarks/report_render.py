"""Render time and output size of every report format for a run of 500 synthetic queries.

    .venv/bin/python benchmarks/report_render.py [--queries 500] [--repeat 5]

Queries get a mix of verdicts (most pass, as in a real run), plan trees of three to seven nodes,
SQL of a few lines and 30 timing samples each. Times are the best of --repeat renders.
"""

from __future__ import annotations

import argparse
import random
import time

from querywarden.observation import Observation, Timing
from querywarden.plan import Buffers, PlanNode
from querywarden.query import SourceLocation
from querywarden.reports.render import FORMATS, render_report
from querywarden.reports.results import dumps, run_from_dict, run_to_dict
from querywarden.verdict import QueryResult, RunResult, Verdict

VERDICTS = [Verdict.PASS] * 80 + [Verdict.FAIL] * 6 + [Verdict.WARN] * 6 + [Verdict.IMPROVED] * 4 + [
    Verdict.NEW
] * 3 + [Verdict.MISSING]


def plan(rng: random.Random, table: str, seq: bool) -> PlanNode:
    blocks = 16_396 if seq else rng.randint(3, 12)
    scan = PlanNode(
        node_type="Seq Scan" if seq else "Index Scan",
        relation=table,
        index=None if seq else f"ix_{table}_user",
        parent_relationship="Outer",
        total_cost=18_334.5 if seq else 8.44,
        plan_rows=rng.randint(1, 50),
        actual_rows=rng.randint(1, 50),
        buffers=Buffers(shared=blocks),
        detail=(("Filter" if seq else "Index Cond", "(user_id = $1)"),),
    )
    other = PlanNode(
        node_type="Index Scan",
        relation="projects",
        index="projects_pkey",
        parent_relationship="Inner",
        total_cost=0.29,
        plan_rows=1,
        actual_rows=1,
        actual_loops=rng.randint(1, 40),
        buffers=Buffers(shared=rng.randint(3, 90)),
    )
    join = PlanNode(
        node_type="Nested Loop",
        join_type="Inner",
        total_cost=scan.total_cost + 12.0,
        plan_rows=scan.plan_rows,
        actual_rows=scan.actual_rows,
        buffers=Buffers(shared=scan.buffers.shared + other.buffers.shared),
        children=(scan, other),
    )
    return PlanNode(
        node_type="Sort",
        total_cost=join.total_cost + 1.5,
        plan_rows=join.plan_rows,
        actual_rows=join.actual_rows,
        buffers=join.buffers,
        detail=(("Sort Key", "t.started_at DESC"),),
        children=(join,),
    )


def observation(rng: random.Random, name: str, table: str, seq: bool, median: float, samples: bool) -> Observation:
    sql = (
        f"SELECT t.id, t.minutes, p.name\nFROM {table} AS t\nJOIN projects AS p ON p.id = t.project_id\n"
        f"WHERE t.user_id = $1\nORDER BY t.started_at DESC\nLIMIT 50"
    )
    values = [median * rng.uniform(0.9, 1.25) for _ in range(30)] if samples else []
    timing = (
        Timing.from_samples(values)
        if values
        else Timing(median_ms=median, min_ms=median * 0.9, p90_ms=median * 1.2, count=30)
    )
    return Observation(
        name=name,
        sql=sql,
        normalized_sql=sql,
        fingerprint=f"{rng.getrandbits(64):016x}",
        calls_per_minute=rng.choice([1.0, 6.0, 60.0, 600.0]),
        plan=plan(rng, table, seq),
        timing=timing,
        environment={"server_version": "15.10"},
    )


def synthetic_run(count: int, seed: int = 7) -> RunResult:
    rng = random.Random(seed)
    results = []
    for i in range(count):
        verdict = rng.choice(VERDICTS)
        name = f"report_query_{i:03d}"
        table = rng.choice(["time_entries", "invoices", "audit_log"])
        regressed = verdict in (Verdict.FAIL, Verdict.WARN)
        before = None if verdict is Verdict.NEW else observation(rng, name, table, verdict is Verdict.IMPROVED, 0.4, False)
        after = None if verdict is Verdict.MISSING else observation(rng, name, table, regressed, 38.0 if regressed else 0.4, True)
        results.append(
            QueryResult(
                name=name,
                verdict=verdict,
                blocking=verdict is Verdict.FAIL,
                reasons=("plan changed: Seq Scan instead of Index Scan",) if regressed else (),
                calls_per_minute=after.calls_per_minute if after else 1.0,
                before=before,
                after=after,
                source=SourceLocation("queries/reports.sql", i * 4 + 1),
                extra_ms_per_minute=37.6 * (after.calls_per_minute if after else 0.0) if regressed else None,
            )
        )
    return RunResult(queries=tuple(results))


def best_of(repeat: int, action: object) -> float:
    assert callable(action)
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        action()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--queries", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    run = synthetic_run(args.queries)
    counts = ", ".join(f"{n} {v}" for v, n in run.counts().items() if n)
    print(f"{len(run.queries)} synthetic queries ({counts}); best of {args.repeat}")
    render_report(run, "html")  # load and compile the template once, as a long-lived process would
    print(f"{'format':<14}{'render ms':>10}{'chars':>12}{'bytes (utf-8)':>16}")
    for fmt in FORMATS:
        text = render_report(run, fmt)
        seconds = best_of(args.repeat, lambda fmt=fmt: render_report(run, fmt))
        print(f"{fmt:<14}{seconds * 1000:>10.1f}{len(text):>12,}{len(text.encode()):>16,}")
    text = dumps(run)
    seconds = best_of(args.repeat, lambda: run_from_dict(run_to_dict(run)))
    print(f"{'json round trip':<14}{seconds * 1000:>10.1f}{len(text):>12,}{len(text.encode()):>16,}")


if __name__ == "__main__":
    main()
