"""Hand-built runs for the report tests: realistic plans, every verdict, and a hostile catalog."""

from __future__ import annotations

from querywarden.observation import Observation, Timing
from querywarden.plan import Buffers, PlanNode
from querywarden.query import SourceLocation
from querywarden.verdict import QueryResult, RunResult, Verdict

HOSTILE_NAME = "evil|name`<script>alert(1)</script>@team"
HOSTILE_SQL_COMMENT = "/* <script>document.title='pwned'</script> | <img src=http://127.0.0.1:9/x.png> ``` */"

USER_TOTAL_SQL = "SELECT sum(minutes) FROM time_entries WHERE user_id = %s"


def index_plan(buffers: int = 4) -> PlanNode:
    return PlanNode(
        node_type="Aggregate",
        strategy="Plain",
        total_cost=8.46,
        plan_rows=1,
        actual_rows=1,
        buffers=Buffers(shared=buffers),
        children=(
            PlanNode(
                node_type="Index Scan",
                relation="time_entries",
                index="ix_time_entries_user",
                parent_relationship="Outer",
                total_cost=8.44,
                plan_rows=1,
                actual_rows=3,
                buffers=Buffers(shared=buffers),
                detail=(("Index Cond", "(user_id = 42)"),),
            ),
        ),
    )


def seq_plan() -> PlanNode:
    return PlanNode(
        node_type="Aggregate",
        strategy="Plain",
        total_cost=18_334.51,
        plan_rows=1,
        actual_rows=1,
        buffers=Buffers(shared=16_396),
        children=(
            PlanNode(
                node_type="Seq Scan",
                relation="time_entries",
                parent_relationship="Outer",
                total_cost=18_334.5,
                plan_rows=1,
                actual_rows=3,
                buffers=Buffers(shared=16_396),
                detail=(("Filter", "(user_id = 42)"),),
            ),
        ),
    )


def sort_plan(spill: str | None, temp: int) -> PlanNode:
    return PlanNode(
        node_type="Sort",
        total_cost=2_310.0,
        plan_rows=50_000,
        actual_rows=50_000,
        buffers=Buffers(shared=410, temp_read=temp, temp_written=temp),
        spill=spill,
        detail=(("Sort Key", "started_at DESC"),),
        children=(
            PlanNode(
                node_type="Seq Scan",
                relation="projects",
                parent_relationship="Outer",
                total_cost=900.0,
                plan_rows=50_000,
                actual_rows=50_000,
                buffers=Buffers(shared=410),
            ),
        ),
    )


def observation(
    name: str,
    plan: PlanNode,
    median_ms: float,
    *,
    sql: str = USER_TOTAL_SQL,
    samples: tuple[float, ...] = (),
    calls_per_minute: float = 120.0,
) -> Observation:
    normalized = sql.replace("%s", "$1")
    if samples:
        timing = Timing.from_samples(samples)
    else:
        timing = Timing(median_ms=median_ms, min_ms=median_ms * 0.9, p90_ms=median_ms * 1.2, count=20)
    return Observation(
        name=name,
        sql=sql,
        normalized_sql=normalized,
        fingerprint=f"fp-{abs(hash(normalized)) % 10**8:08d}",
        calls_per_minute=calls_per_minute,
        plan=plan,
        timing=timing,
        environment={"server_version": "15.10"},
    )


def spread(center: float, count: int = 20) -> tuple[float, ...]:
    return tuple(round(center * (0.9 + 0.2 * i / (count - 1)), 4) for i in range(count))


def sample_run() -> RunResult:
    """One run with a result of each common verdict; the fail blocks and has a catalog source line."""
    fail = QueryResult(
        name="user_total_minutes",
        verdict=Verdict.FAIL,
        blocking=True,
        reasons=(
            "plan changed: time_entries read by Seq Scan instead of Index Scan using ix_time_entries_user",
            "buffers 4 → 16,396 (×4,099)",
        ),
        calls_per_minute=120.0,
        before=observation("user_total_minutes", index_plan(), 0.41),
        after=observation("user_total_minutes", seq_plan(), 38.2, samples=spread(38.2)),
        source=SourceLocation("queries/hot.sql", 12),
        extra_ms_per_minute=4_534.8,
    )
    warn = QueryResult(
        name="project_timeline",
        verdict=Verdict.WARN,
        blocking=False,
        reasons=("sort spilled to disk",),
        calls_per_minute=6.0,
        before=observation("project_timeline", sort_plan(None, 0), 21.0, sql="SELECT * FROM projects ORDER BY started_at DESC"),
        after=observation(
            "project_timeline",
            sort_plan("sort spilled to disk (external merge, 1,240 kB)", 310),
            25.5,
            sql="SELECT * FROM projects ORDER BY started_at DESC",
            samples=spread(25.5),
        ),
        source=SourceLocation("tests/test_reports.py", 88),
        extra_ms_per_minute=27.0,
    )
    passed = QueryResult(
        name="user_by_email",
        verdict=Verdict.PASS,
        blocking=False,
        reasons=(),
        calls_per_minute=600.0,
        before=observation("user_by_email", index_plan(3), 0.12),
        after=observation("user_by_email", index_plan(3), 0.12, samples=spread(0.12)),
        source=SourceLocation("queries/hot.sql", 3),
        extra_ms_per_minute=0.0,
    )
    improved = QueryResult(
        name="team_report",
        verdict=Verdict.IMPROVED,
        blocking=False,
        reasons=("buffers 16,396 → 4",),
        calls_per_minute=2.0,
        before=observation("team_report", seq_plan(), 30.0),
        after=observation("team_report", index_plan(), 0.5, samples=spread(0.5)),
        source=SourceLocation("queries/hot.sql", 20),
        extra_ms_per_minute=None,
    )
    new = QueryResult(
        name="invoice_lines",
        verdict=Verdict.NEW,
        blocking=False,
        reasons=("no baseline yet: run `querywarden update` and commit baselines/invoice_lines.json",),
        calls_per_minute=30.0,
        before=None,
        after=observation("invoice_lines", index_plan(7), 0.3, samples=spread(0.3)),
        source=SourceLocation("queries/hot.sql", 31),
    )
    missing = QueryResult(
        name="legacy_export",
        verdict=Verdict.MISSING,
        blocking=False,
        reasons=("baseline exists but the query was not measured",),
        calls_per_minute=1.0,
        before=observation("legacy_export", seq_plan(), 40.0),
        after=None,
        source=None,
    )
    return RunResult(queries=(passed, improved, warn, fail, new, missing))


def hostile_result(blocking: bool = True) -> QueryResult:
    """A failing query whose name, SQL and plan try to break out of every report format."""
    sql = f"SELECT 1 {HOSTILE_SQL_COMMENT}\n| a | b |\n```\n</details>"
    plan = PlanNode(
        node_type="Seq Scan",
        relation="t<script>alert(2)</script>|x",
        total_cost=10.0,
        buffers=Buffers(shared=200),
        detail=(("Filter", "(note = '<img src=http://127.0.0.1:9/y.png>')"),),
    )
    return QueryResult(
        name=HOSTILE_NAME,
        verdict=Verdict.FAIL,
        blocking=blocking,
        reasons=("reason with | pipe, `tick`, <b>bold</b>, 100% and a\nnewline, key: value",),
        calls_per_minute=10.0,
        before=observation(HOSTILE_NAME, index_plan(), 0.2, sql="SELECT 1 /* old */"),
        after=observation(HOSTILE_NAME, plan, 3.0, sql=sql, samples=spread(3.0)),
        source=SourceLocation("queries/evil,file:name.sql", 7),
        extra_ms_per_minute=28.0,
    )


def many_run(count: int) -> RunResult:
    """`count` failing queries with long SQL, for the size bounds."""
    results = []
    long_sql = "SELECT " + ",\n       ".join(f"column_{i}" for i in range(60)) + "\nFROM time_entries WHERE user_id = %s"
    for i in range(count):
        name = f"query_{i:04d}"
        results.append(
            QueryResult(
                name=name,
                verdict=Verdict.FAIL,
                blocking=True,
                reasons=("plan changed: time_entries read by Seq Scan instead of Index Scan", "buffers 4 → 16,396"),
                calls_per_minute=float(i + 1),
                before=observation(name, index_plan(), 0.4, sql=long_sql),
                after=observation(name, seq_plan(), 38.0, sql=long_sql.replace("column_7", "column_7 + 1"), samples=spread(38.0)),
                source=SourceLocation("queries/many.sql", i + 1),
                extra_ms_per_minute=37.6 * (i + 1),
            )
        )
    return RunResult(queries=tuple(results))
