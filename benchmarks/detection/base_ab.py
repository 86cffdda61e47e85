"""Detection benchmark of `check --base` (issue 18): schema-only changes judged by a same-run A/B.

    python benchmarks/detection/base_ab.py              # 20 runs of every scenario (~15 min on 2 cores)
    python benchmarks/detection/base_ab.py --quick      # a smoke run: 3 runs of every scenario
    python benchmarks/detection/base_ab.py --explain    # one run of every scenario, with every verdict's reasons
    python benchmarks/detection/base_ab.py --runs 5 --only fn_x1.2,unchanged --json verdicts.json

Every scenario leaves the catalog's SQL as it is and changes only the schema: the base revision is the
time-tracker example's schema and seed plus `schema_base/base_entry_objects.sql` (a PL/pgSQL function
and a view that hot queries of this benchmark's catalog read through), the head is the same plus one
migration of `schema_base/` loaded after the schema, before the seed. Each check is what `querywarden
check --base REF` does: `engine.open_catalog_site(..., base_seed=...)` clones both revisions'
templates, every query is measured on both, explained on each and timed interleaved, and the base's
measurement is the `before` of its verdict (no stored baselines at all).

The CPU-only changes (a slower function body, a trigger) carry a knob, the number after
`/* knob */` in their migration, tuned at start-up so the end-to-end query is x1.2, x1.5 or x2
slower on this machine now (a line fitted through two probes, timed interleaved on scratch clones,
as querywarden times: plain executions in rolled-back transactions). Load moves the real ratio, so
the report prints the ratio the engine's own A/B measured next to each nominal level.

Runs are interleaved: each round checks every scenario once, in a shuffled order, so drift in the
machine's speed hits every scenario alike. Printed: per scenario the verdicts of the query the change
is aimed at (for unchanged and benign heads: of the whole check), the queries a migration leaves
alone, the false alarms, what the verdicts rest on (`QueryResult.basis`), the timing-only verdicts
the engine measured again, and the wall time of a check.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import psycopg

from run import quantile  # noqa: E402  (the detection benchmark's, beside this file)
from querywarden.catalog import load_catalogs, parse_catalog
from querywarden.database import Server, connect
from querywarden.engine import evaluate, open_catalog_site
from querywarden.errors import DatabaseError
from querywarden.fingerprint import identify
from querywarden import measure as measure_module
from querywarden.measure import one_core
from querywarden.observation import Observation
from querywarden.policy import DEFAULT_PINNED_SETTINGS, MeasureSettings, Policy
from querywarden.query import GuardedQuery
from querywarden.seeding.seed import Seed, drop_template, ensure_template

HERE = Path(__file__).resolve().parent
EXAMPLE = HERE.parents[1] / "examples" / "timetracker"
SCHEMA_BASE = HERE / "schema_base"
BASE_ITEM = SCHEMA_BASE / "base_entry_objects.sql"
DEFAULT_DSN = os.environ.get("QUERYWARDEN_TEST_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")
SCALE = 0.1  # time_entries: ~100,000 rows, 1,106 blocks (over the policy's large_relation_blocks); a template builds in ~1 s
REVISION = "base"
KNOB = re.compile(r"/\* knob \*/ \d+")
CALIBRATION_BLOCK = 100  # rounds timed on one set of sessions

# The example's hot reads that this benchmark's checks measure with its own queries (the monthly report
# and the two rare writes are left out: they cost a check time and no scenario is about them).
EXAMPLE_QUERIES = ("running_timer", "recent_entries", "active_projects", "week_totals_by_project", "tag_autocomplete", "user_by_email")

# Hot queries the example lacks: each reads through what a scenario's migration changes.
BENCH_CATALOG = """
-- name: entry_labels
-- The timeline's labels, made by entry_label() (schema_base/base_entry_objects.sql) for each of 50 rows.
-- calls-per-minute: 4000
-- params: {"user_id": 1187}
SELECT id, entry_label(description, started_at) AS label, started_at
FROM time_entries
WHERE user_id = %(user_id)s
ORDER BY started_at DESC
LIMIT 50;

-- name: entry_feed_page
-- The mobile app's feed, read from the entry_feed view.
-- calls-per-minute: 3000
-- params: {"user_id": 1187}
SELECT id, title, started_at, stopped_at, project_name, project_color
FROM entry_feed
WHERE user_id = %(user_id)s
ORDER BY started_at DESC
LIMIT 50;

-- name: workspace_week_totals
-- The team dashboard: each member's week, aggregated over duration_s.
-- calls-per-minute: 1500
-- params: {"workspace_id": 1, "week_start": "2026-05-25T00:00:00+00:00", "week_end": "2026-06-01T00:00:00+00:00"}
SELECT user_id,
       count(*) AS entries,
       sum(duration_s) AS seconds,
       coalesce(sum(duration_s) FILTER (WHERE billable), 0) AS billable_seconds,
       round(avg(duration_s)) AS mean_seconds,
       max(duration_s) AS longest
FROM time_entries
WHERE workspace_id = %(workspace_id)s
  AND started_at >= %(week_start)s
  AND started_at < %(week_end)s
  AND stopped_at IS NOT NULL
GROUP BY user_id
ORDER BY seconds DESC;

-- name: tagged_entries
-- The latest entries carrying a tag (26 entries carry tag 131 at scale 0.1).
-- calls-per-minute: 1500
-- params: {"tag_id": 131}
SELECT te.id, te.description, te.started_at, te.duration_s
FROM time_entry_tags tt
JOIN time_entries te ON te.id = tt.time_entry_id
WHERE tt.tag_id = %(tag_id)s
ORDER BY te.started_at DESC
LIMIT 20;

-- name: start_timer_mobile
-- The example's start_timer as the mobile apps call it: a hot write (user 1 has no running timer).
-- calls-per-minute: 2000
-- params: {"workspace_id": 1, "user_id": 1, "project_id": 1, "description": "Sprint planning", "started_at": "2026-06-01T00:00:00+00:00", "billable": true}
INSERT INTO time_entries (workspace_id, user_id, project_id, description, started_at, billable)
VALUES (%(workspace_id)s, %(user_id)s, %(project_id)s, %(description)s, %(started_at)s, %(billable)s)
RETURNING id;
"""


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def load_average() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


def uptime() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()
    except OSError:
        return f"load average: {load_average()}"


def catalog() -> list[GuardedQuery]:
    example = {q.name: q for q in load_catalogs([EXAMPLE / "queries.sql"])}
    return [example[name] for name in EXAMPLE_QUERIES] + parse_catalog(BENCH_CATALOG, HERE / "base_ab.py")


def is_write(query: GuardedQuery) -> bool:
    return identify(query.sql).kind != "read"


# ----------------------------------------------------------------------------------------- scenarios


@dataclass(frozen=True)
class Knob:
    """A migration whose CPU work is the number after `/* knob */`, tuned so that `query` is x level slower."""

    migration: str  # file in schema_base/
    query: str
    probes: tuple[int, ...]  # knob settings timed at start-up, spanning the levels wanted


FUNCTION_KNOB = Knob("head_slower_entry_label.sql", "entry_labels", (20, 60, 120))
TRIGGER_KNOB = Knob("head_start_timer_trigger.sql", "start_timer_mobile", (500, 1500, 3000))


@dataclass(frozen=True)
class Scenario:
    id: str
    kind: str  # regression | benign | unchanged
    what: str
    migration: str | None = None  # file in schema_base/ (None: the head's schema is the base's)
    target: str | None = None  # the query the change is aimed at: it must block
    touched: tuple[str, ...] = ()  # other queries the migration really changes: any verdict is right for them
    knob: Knob | None = None
    level: float | None = None  # nominal slowdown of the target (knobbed migrations)
    cpu_only: bool = False  # same plan, same blocks: only timing can see it

    @property
    def expected(self) -> str:
        return "block" if self.kind == "regression" else "pass"


SCENARIOS: tuple[Scenario, ...] = (
    Scenario("fn_x1.2", "regression", "slower SQL function body, CPU x1.2", target="entry_labels",
             knob=FUNCTION_KNOB, level=1.2, cpu_only=True),
    Scenario("fn_x1.5", "regression", "slower SQL function body, CPU x1.5", target="entry_labels",
             knob=FUNCTION_KNOB, level=1.5, cpu_only=True),
    Scenario("fn_x2", "regression", "slower SQL function body, CPU x2", target="entry_labels",
             knob=FUNCTION_KNOB, level=2.0, cpu_only=True),
    Scenario("trigger_x1.5", "regression", "BEFORE ROW trigger on a hot INSERT, CPU x1.5", target="start_timer_mobile",
             knob=TRIGGER_KNOB, level=1.5, cpu_only=True),
    Scenario("type_numeric_agg", "regression", "int -> numeric(12,3), same plan (aggregates)", "head_numeric_duration.sql",
             target="workspace_week_totals", touched=("week_totals_by_project", "recent_entries", "tagged_entries"), cpu_only=True),
    Scenario("type_loses_index", "regression", "bigint -> numeric(20) join key, index lost", "head_numeric_tag_entry_ids.sql",
             target="tagged_entries"),
    Scenario("view_slower", "regression", "view column computed with more CPU per row", "head_slower_entry_feed.sql",
             target="entry_feed_page", cpu_only=True),
    Scenario("unchanged", "unchanged", "head = base (same migrations)"),
    Scenario("benign_column", "benign", "added unused column (time_entries)", "head_add_unused_column.sql"),
    Scenario("benign_index", "benign", "unrelated index (clients)", "head_unrelated_index.sql"),
)


def knobbed(knob: Knob, k: int, directory: Path) -> Path:
    """The knob's migration with its work set to k, written under `directory` (a Seed hashes contents, not paths)."""
    text = (SCHEMA_BASE / knob.migration).read_text(encoding="utf-8")
    if len(KNOB.findall(text)) != 1:
        raise SystemExit(f"{knob.migration}: expected exactly one `/* knob */ N` marker")
    path = directory / f"{Path(knob.migration).stem}.k{k}.sql"
    path.write_text(KNOB.sub(f"/* knob */ {k}", text), encoding="utf-8")
    return path


def base_seed() -> Seed:
    return Seed(("seed.sql",), SCALE, EXAMPLE, schema=("schema.sql", str(BASE_ITEM)))


def head_seed(migration: Path | None) -> Seed:
    if migration is None:
        return base_seed()
    return Seed(("seed.sql",), SCALE, EXAMPLE, schema=("schema.sql", str(BASE_ITEM), str(migration)))


# ----------------------------------------------------------------------------------------- calibration


def _session(dsn: str) -> psycopg.Connection[Any]:
    conn = psycopg.connect(dsn, autocommit=True)
    conn.prepare_threshold = None  # custom plans, as querywarden measures
    for name, value in DEFAULT_PINNED_SETTINGS.items():
        conn.execute("SELECT set_config(%s, %s, false)", (name, value))
    return conn


def _timed(conn: psycopg.Connection[Any], query: GuardedQuery, write: bool) -> float:
    """One plain execution in its own rolled-back transaction, the statement alone timed (as querywarden does)."""
    with conn.cursor() as cur:
        cur.execute("BEGIN" if write else "BEGIN READ ONLY")
        try:
            started = time.perf_counter()
            cur.execute(query.sql, query.params)
            if cur.description is not None:
                cur.fetchall()
            return time.perf_counter() - started
        finally:
            cur.execute("ROLLBACK")


@dataclass(frozen=True)
class Fit:
    knob: Knob
    excess: Mapping[int, float]  # probe k -> measured ratio - 1
    intercept: float
    slope: float

    def k_for(self, level: float) -> int:
        return max(int(round((level - 1.0 - self.intercept) / self.slope)), 1)

    def text(self) -> str:
        probes = ", ".join(f"k={k}: x{1 + e:.2f}" for k, e in sorted(self.excess.items()))
        return f"{self.knob.query} ({self.knob.migration}): {probes}"


def calibrate(server: Server, base_template: str, knob: Knob, query: GuardedQuery, rounds: int) -> Fit:
    """Timings of `query` on a clone of the base and on clones with the migration at each probe setting,
    round-robin in a rotating order (drift hits every probe alike); each probe's slowdown is the median of
    its per-round ratios to the base, fitted by least squares as ratio = 1 + a + b * k (a: the migration's
    fixed cost, e.g. one more PL/pgSQL statement per call)."""
    write = is_write(query)
    blocks = max(rounds // CALIBRATION_BLOCK, 1)
    ratios: list[list[float]] = [[] for _ in knob.probes]
    with ExitStack() as stack:
        base_dsn = stack.enter_context(server.clone(base_template, prefix="qwbench_cal"))
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="qwbench_knob_")))
        dsns = [base_dsn]
        for k in knob.probes:
            head_dsn = stack.enter_context(server.clone(base_template, prefix="qwbench_cal"))
            with connect(head_dsn, autocommit=True) as conn:
                conn.execute(knobbed(knob, k, tmp).read_text(encoding="utf-8"))
            dsns.append(head_dsn)
        # Fresh sessions per block, all on one CPU with this process (`measure.one_core`, as the engine
        # pins the two sides of a pair): under load, backends left on cores of their own answered
        # identical probes x1.01-x1.16 apart, which would turn into a wrong fit.
        for _ in range(blocks):
            with ExitStack() as block:
                sides = [block.enter_context(_session(dsn)) for dsn in dsns]
                block.enter_context(one_core(*sides))  # as the engine times a pair: client and backends on one CPU
                for _ in range(5):
                    for side in sides:
                        _timed(side, query, write)
                for i in range(max(rounds // blocks, 1)):
                    order = sides[i % len(sides):] + sides[:i % len(sides)]
                    times = {id(side): _timed(side, query, write) for side in order}
                    base_time = times[id(sides[0])]
                    for position, side in enumerate(sides[1:]):
                        ratios[position].append(times[id(side)] / base_time)
    excess = {k: statistics.median(found) - 1.0 for k, found in zip(knob.probes, ratios)}
    ks, es = list(excess), list(excess.values())
    mean_k, mean_e = statistics.fmean(ks), statistics.fmean(es)
    slope = sum((k - mean_k) * (e - mean_e) for k, e in zip(ks, es)) / sum((k - mean_k) ** 2 for k in ks)
    slope = max(slope, 1e-6)
    return Fit(knob, excess, mean_e - slope * mean_k, slope)


# ----------------------------------------------------------------------------------------- checks


@dataclass
class Record:
    scenario: str
    run: int
    query: str
    role: str  # target | touched | alone (a query the migration leaves alone)
    verdict: str
    blocking: bool
    basis: str
    ratio: float | None  # the same-run A/B's ratio of medians, head / base
    decision: str | None  # the A/B's decision
    reasons: tuple[str, ...]
    first_verdict: str | None = None  # when the engine measured it again: the first verdict
    buffers: tuple[int, int] | None = None  # base, head


@dataclass
class Check:
    scenario: str
    run: int
    wall_s: float  # the whole check: templates looked up, both clones and the role, every query measured and judged
    evaluate_s: float
    records: list[Record] = field(default_factory=list)

    @property
    def blocked(self) -> bool:
        return any(r.blocking for r in self.records)

    @property
    def non_pass(self) -> bool:
        return any(r.verdict != "pass" for r in self.records)


RETRIES: list[str] = []
T = TypeVar("T")


def retrying(what: str, action: Callable[[], T], attempts: int = 4) -> T:
    """Run `action` again after a pause when the shared server drops a connection (counted in the report)."""
    for attempt in range(attempts):
        try:
            return action()
        except (DatabaseError, psycopg.OperationalError) as exc:
            if attempt == attempts - 1:
                raise
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            RETRIES.append(f"{what}: {first[:200]}")
            log(f"  retrying {what} after: {first[:200]}")
            time.sleep(2.0 * (attempt + 1))
    raise AssertionError("unreachable")


def run_check(dsn: str, scenario: Scenario, seed: Seed, queries: Sequence[GuardedQuery], run: int) -> Check:
    base_queries = {q.name: q for q in queries}  # the catalog's SQL is the same on both revisions
    started = time.perf_counter()
    with open_catalog_site(dsn, seed, base_seed=base_seed(), base_revision=REVISION) as place:
        assert place.base_database is not None
        statements = place.statements(queries, {}, base_queries)
        evaluating = time.perf_counter()
        evaluation = evaluate(statements, place.site, MeasureSettings(), Policy())
        evaluate_s = time.perf_counter() - evaluating
    check = Check(scenario.id, run, time.perf_counter() - started, evaluate_s)
    for position, (query, result) in enumerate(zip(queries, evaluation.results)):
        replay = evaluation.replays.get(position)
        first = evaluation.confirmed.get(position)
        role = "target" if query.name == scenario.target else "touched" if query.name in scenario.touched else "alone"
        buffers = None
        if isinstance(result.before, Observation) and isinstance(result.after, Observation):
            buffers = (result.before.buffers.total, result.after.buffers.total)
        check.records.append(Record(
            scenario.id, run, query.name, role, result.verdict.value, result.blocking, result.basis,
            replay.ratio if replay else None, replay.decision if replay else None, tuple(result.reasons),
            first.verdict.value if first is not None else None, buffers,
        ))
    return check


# ----------------------------------------------------------------------------------------- main


@contextmanager
def _never_pinned(*_: Any) -> Iterator[bool]:
    yield False



def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dsn", default=DEFAULT_DSN)
    parser.add_argument("--runs", type=int, help="checks of every scenario (default 20, --quick 3)")
    parser.add_argument("--quick", action="store_true", help="a smoke run: 3 checks of every scenario")
    parser.add_argument("--explain", action="store_true", help="one check of every scenario, printing every verdict with its reasons")
    parser.add_argument("--only", help="comma-separated scenario ids (default: all)")
    parser.add_argument("--calibration-rounds", type=int, default=800, help="round-robin rounds of the calibration (each times the base and every probe once)")
    parser.add_argument("--keep-templates", action="store_true", help="keep the templates of the knobbed migrations (dropped by default: their knob changes every run)")
    parser.add_argument("--unpinned", action="store_true",
                        help="leave the engine's two backends of a pair where the system puts them, as where it cannot pin them "
                             "(a server in a container or on another host): the basis then says the timing is loose")
    parser.add_argument("--json", type=Path, help="write every verdict to this file")
    args = parser.parse_args()
    if args.unpinned:
        measure_module.one_core = _never_pinned  # what measure_pair gets where sched_setaffinity cannot reach the backends
    runs = 1 if args.explain else args.runs if args.runs is not None else 3 if args.quick else 20
    wanted = set(args.only.split(",")) if args.only else None
    scenarios = [s for s in SCENARIOS if wanted is None or s.id in wanted]
    if wanted is not None and len(scenarios) != len(wanted):
        raise SystemExit(f"unknown scenario ids: {sorted(wanted - {s.id for s in SCENARIOS})}; known: {[s.id for s in SCENARIOS]}")

    wall_started = time.perf_counter()
    load_before = uptime()
    server = Server(args.dsn)
    queries = catalog()
    by_name = {q.name: q for q in queries}
    log(f"base A/B benchmark: {len(scenarios)} scenarios x {runs} runs, catalog of {len(queries)} queries, load {load_average()}")

    with tempfile.TemporaryDirectory(prefix="qwbench_heads_") as tmp:
        work = Path(tmp)
        started = time.perf_counter()
        base_template = retrying("the base template", lambda: ensure_template(server, base_seed(), lambda line: log(f"    {line}")))
        log(f"  base template {base_template} in {time.perf_counter() - started:.1f} s")

        # ------------------------------------------------------------ calibration of the knobs
        fits: dict[str, Fit] = {}
        for knob in {s.knob for s in scenarios if s.knob is not None}:
            started = time.perf_counter()
            fit = retrying(f"calibrating {knob.migration}", partial(calibrate, server, base_template, knob, by_name[knob.query], args.calibration_rounds))
            fits[knob.migration] = fit
            log(f"  calibration {fit.text()} -> x1 + {fit.intercept:.3f} + {fit.slope:.5f} k, in {time.perf_counter() - started:.1f} s")

        # ------------------------------------------------------------ head templates
        seeds: dict[str, Seed] = {}
        knobs: dict[str, int] = {}
        generated: set[str] = set()
        started = time.perf_counter()
        for scenario in scenarios:
            migration: Path | None = None
            if scenario.knob is not None and scenario.level is not None:
                knobs[scenario.id] = fits[scenario.knob.migration].k_for(scenario.level)
                migration = knobbed(scenario.knob, knobs[scenario.id], work)
            elif scenario.migration is not None:
                migration = SCHEMA_BASE / scenario.migration
            seed = head_seed(migration)
            seeds[scenario.id] = seed
            name = retrying(f"the head template of {scenario.id}", partial(ensure_template, server, seed))
            if scenario.knob is not None:
                generated.add(name)
        log(f"  head templates of {len(seeds)} scenarios in {time.perf_counter() - started:.1f} s; knobs {knobs}")

        # ------------------------------------------------------------ the interleaved checks
        checks: list[Check] = []
        rng = random.Random(18)
        try:
            for run in range(runs):
                order = list(scenarios)
                rng.shuffle(order)
                round_started = time.perf_counter()
                for scenario in order:
                    check = retrying(f"check {scenario.id} run {run}", partial(run_check, args.dsn, scenario, seeds[scenario.id], queries, run))
                    checks.append(check)
                    if args.explain:
                        explain(check, scenario)
                log(f"  round {run + 1}/{runs}: {len(order)} checks in {time.perf_counter() - round_started:.1f} s, load {load_average()}")
        finally:
            if not args.keep_templates:
                for name in sorted(generated):
                    try:
                        drop_template(server, name)
                    except DatabaseError as exc:
                        log(f"  could not drop {name}: {exc}")

    wall = time.perf_counter() - wall_started
    if not args.explain:
        report(checks, scenarios, queries, fits, knobs, runs, wall, load_before, uptime())
    if args.json:
        args.json.write_text(json.dumps([
            {"scenario": c.scenario, "run": c.run, "wall_s": round(c.wall_s, 3), "evaluate_s": round(c.evaluate_s, 3),
             "verdicts": [r.__dict__ for r in c.records]} for c in checks
        ], indent=1, default=list))
        log(f"wrote {len(checks)} checks to {args.json}")


# ----------------------------------------------------------------------------------------- reporting


def pct(part: int, whole: int) -> str:
    return f"{part}/{whole} ({100.0 * part / whole:.0f}%)" if whole else "0/0"


def ratio_text(values: Sequence[float | None]) -> str:
    found = [v for v in values if v is not None and math.isfinite(v)]
    if not found:
        return "-"
    return f"x{statistics.median(found):.2f} ({min(found):.2f}-{max(found):.2f})"


def explain(check: Check, scenario: Scenario) -> None:
    print(f"== {scenario.id}: {scenario.what} (expected: {scenario.expected}{' on ' + scenario.target if scenario.target else ''}); "
          f"check {check.wall_s:.1f} s")
    for record in check.records:
        ratio = f"x{record.ratio:.2f} {record.decision}" if record.ratio is not None else "no A/B"
        again = f" (first {record.first_verdict}, measured again)" if record.first_verdict else ""
        blocks = f" buffers {record.buffers[0]}->{record.buffers[1]}" if record.buffers else ""
        print(f"   {record.role:<7} {record.query:<24} {record.verdict:<8}{' BLOCKS' if record.blocking else '':<7} {ratio:<16}{blocks}{again}")
        if record.verdict != "pass" or record.role == "target":
            for reason in record.reasons:
                print(f"        - {reason}")
            print(f"        basis: {record.basis}")


def report(
    checks: Sequence[Check], scenarios: Sequence[Scenario], queries: Sequence[GuardedQuery], fits: Mapping[str, Fit],
    knobs: Mapping[str, int], runs: int, wall: float, load_before: str, load_after: str,
) -> None:
    by_scenario: dict[str, list[Check]] = defaultdict(list)
    for check in checks:
        by_scenario[check.scenario].append(check)
    policy = Policy()
    hot = sum(q.calls_per_minute >= policy.hot_calls_per_minute for q in queries)
    print("=" * 110)
    print("querywarden check --base: same-run A/B against the base revision, detection benchmark (issue 18)")
    print(f"machine: {os.cpu_count()} cores, Python {platform.python_version()}, {platform.platform()}")
    print(f"load before: {load_before}")
    print(f"load after:  {load_after}")
    print(f"engine pins each A/B pair to one CPU: {'no (--unpinned)' if measure_module.one_core is _never_pinned else 'where it can'}")
    print(f"plan: {runs} checks of each of {len(scenarios)} scenarios, interleaved (every round checks each scenario once, shuffled); "
          f"catalog of {len(queries)} queries ({hot} hot, {sum(is_write(q) for q in queries)} write), unchanged SQL, no stored baselines; "
          f"seed scale {SCALE:g}")
    for fit in fits.values():
        levels = {s.level: knobs[s.id] for s in scenarios if s.knob is fit.knob and s.id in knobs}
        print(f"calibration {fit.text()}; k per level {levels}")
    print()

    header = (f"{'scenario':<17} {'change':<47} {'expected':<8} {'runs':>4} {'blocked':>7} {'warned':>6} {'passed':>6} {'improved':>8} "
              f"{'other':>5} {'block rate':>10}  {'A/B ratio of the target: median (range)':<30}")
    print("Per scenario: the verdict on the query the change is aimed at; for unchanged and benign heads, the whole check")
    print("(blocked: some query blocked; warned: none blocked, some warned; passed: every query passed; improved: none blocked")
    print("or warned, some judged faster; other: error, new, incomparable)")
    print(header)
    print("-" * len(header))
    for scenario in scenarios:
        mine = by_scenario.get(scenario.id, [])
        if scenario.target:
            targets = [r for c in mine for r in c.records if r.role == "target"]
            blocked = sum(r.blocking for r in targets)
            warned = sum(r.verdict == "warn" and not r.blocking for r in targets)
            passed = sum(r.verdict == "pass" for r in targets)
            improved = sum(r.verdict == "improved" for r in targets)
            ratios = [r.ratio for r in targets]
        else:
            blocked = sum(c.blocked for c in mine)
            warned = sum(not c.blocked and any(r.verdict == "warn" for r in c.records) for c in mine)
            passed = sum(all(r.verdict == "pass" for r in c.records) for c in mine)
            improved = sum(all(r.verdict in ("pass", "improved") for r in c.records) and not all(r.verdict == "pass" for r in c.records) for c in mine)
            ratios = [r.ratio for c in mine for r in c.records]
        other = len(mine) - blocked - warned - passed - improved
        rate = f"{100.0 * blocked / len(mine):.0f}%" if mine else "-"
        ratio = ratio_text(ratios) + ("" if scenario.target else " (all queries)")
        print(f"{scenario.id:<17} {scenario.what:<47} {scenario.expected:<8} {len(mine):>4} {blocked:>7} {warned:>6} {passed:>6} {improved:>8} "
              f"{other:>5} {rate:>10}  {ratio}")
    print()

    # ------------------------------------------------------------ headline figures
    records = [r for c in checks for r in c.records]
    fn12 = [r for c in by_scenario.get("fn_x1.2", []) for r in c.records if r.role == "target"]
    if fn12:
        print(f"CPU-only x1.2 caught in {sum(r.blocking for r in fn12)}/{len(fn12)} runs "
              f"(the engine's A/B measured {ratio_text([r.ratio for r in fn12])})")
    control = [c for c in checks if next(s for s in scenarios if s.id == c.scenario).kind in ("unchanged", "benign")]
    control_q = [r for c in control for r in c.records]
    print(f"false alarms (blocks) on unchanged+benign: {sum(c.blocked for c in control)}/{len(control)} checks, "
          f"{sum(r.blocking for r in control_q)}/{len(control_q)} queries; "
          f"non-pass: {sum(c.non_pass for c in control)}/{len(control)} checks, {sum(r.verdict != 'pass' for r in control_q)}/{len(control_q)} queries")
    alone = [r for c in checks if next(s for s in scenarios if s.id == c.scenario).kind == "regression" for r in c.records if r.role == "alone"]
    print(f"queries a regression's migration leaves alone: blocked {pct(sum(r.blocking for r in alone), len(alone))}, "
          f"non-pass {pct(sum(r.verdict != 'pass' for r in alone), len(alone))}")
    kind_of = {s.id: s.kind for s in scenarios}
    null = [r for r in records if r.role == "alone" or kind_of[r.scenario] != "regression"]
    first_blocks = [r for r in null if r.first_verdict == "fail"]
    print(f"unchanged queries (left alone, unchanged and benign heads): {pct(sum(r.blocking for r in null), len(null))} blocked, "
          f"{sum(r.verdict == 'improved' for r in null)} judged faster; first-pass blocks undone by the engine's second measurement: "
          f"{sum(not r.blocking for r in first_blocks)}/{len(first_blocks)}")
    touched = [r for r in records if r.role == "touched"]
    if touched:
        print(f"queries a migration also changes (any verdict right): {dict(Counter((r.query, r.verdict) for r in touched))}")
    walls = [c.wall_s for c in checks]
    evals = [c.evaluate_s for c in checks]
    if walls:
        print(f"wall time per check: median {statistics.median(walls):.2f} s, p90 {quantile(walls, 0.9):.2f} s, max {max(walls):.2f} s "
              f"(measuring and judging: median {statistics.median(evals):.2f} s; the rest is clones and the role); "
              f"{statistics.median(walls) / len(queries):.2f} s per query")
    print()

    # ------------------------------------------------------------ what the verdicts rest on
    print("What the verdicts rest on (QueryResult.basis):")
    for basis, count in Counter(r.basis for r in records).most_common():
        print(f"  {count:>5}  {basis}")
    print()
    print("Timing-only verdicts measured again by the engine (first -> final):")
    moves = Counter((r.scenario if r.role == "target" else "other queries", r.first_verdict, r.verdict) for r in records if r.first_verdict)
    if not moves:
        print("  none")
    for (where, was, now), count in sorted(moves.items()):
        print(f"  {where:<17} {was} -> {now} x{count}")
    print()

    # ------------------------------------------------------------ misclassifications
    print("Misses and false alarms (reasons of the final verdict):")
    shown = 0
    for check in checks:
        scenario = next(s for s in scenarios if s.id == check.scenario)
        for record in check.records:
            wrong = (record.role == "target" and not record.blocking) or (record.role == "alone" and record.verdict != "pass")
            if not wrong:
                continue
            shown += 1
            if shown <= 40:
                print(f"  {scenario.id} run {record.run} / {record.query} ({record.role}): {record.verdict}"
                      f"{' (blocking)' if record.blocking else ''}: {'; '.join(record.reasons)[:400]}")
    if shown > 40:
        print(f"  ... and {shown - 40} more")
    if not shown:
        print("  none")
    print()
    print(f"checks repeated because the shared server dropped a connection: {len(RETRIES)}")
    for line in RETRIES[:10]:
        print(f"  {line}")
    print(f"wall time: {wall:.0f} s ({wall / 60:.1f} min)")


if __name__ == "__main__":
    main()
