"""Detection benchmark (issue 4): does querywarden catch real regressions, and only those?

    python benchmarks/detection/run.py            # the full benchmark (~10 min on 2 cores)
    python benchmarks/detection/run.py --quick    # a smoke run (~2 min)
    python benchmarks/detection/run.py --explain  # one pass: what each scenario changes (blocks, plan, verdict)

The labelled scenarios of `corpus.py` are measured on clones of the seeded time-tracker example,
each several times, by querywarden (`engine.evaluate`: measure, replay, `judge.compare` and the re-measure of
timing-only blocks and warns, as `check` does)
and by pytest-benchmark's `--benchmark-compare-fail=median:10%` (the tool a team would pick instead:
a generated pytest file per scenario times each query with the `benchmark` fixture; a baseline is
saved once with `--benchmark-save`, every later run compares with it).
New queries (`NEW_CATALOG`: no baseline) are checked by querywarden alone, on the unchanged clone, after
the interleaved runs: pytest-benchmark has nothing to compare them with.

Baselines of both tools are recorded once, at the start, on the unchanged catalog; then runs of the
unchanged catalog, of every scenario and of the CPU-only slowdown sweep are interleaved over the
session, so drift in machine speed hits all of them alike, as it hits a CI runner.

Printed: recall on blocking regressions (hot queries doing >= 1.5x the work), false alarms on benign
changes and on unchanged runs (blocking verdicts, and separately any non-pass verdict), the smallest
CPU-only slowdown detected in >= 95% of runs with <= 1% false alarms, the time to a verdict per
query, the verdicts of each scenario, whether new queries are judged right on their own cost at their
production rate (a hot scan of the large table blocks, a hot index lookup and a rare report pass), and
what other Policy thresholds would have given.
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
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from corpus import EXTRA_CATALOG, SCENARIOS, SCHEMA_DIR, SWEEP, Scenario  # noqa: E402

from querywarden.baseline import BaselineStore  # noqa: E402
from querywarden.catalog import load_catalogs, parse_catalog  # noqa: E402
from querywarden.database import Server, connect  # noqa: E402
from querywarden.engine import Statement, database_site, evaluate, refresh  # noqa: E402
from querywarden.errors import DatabaseError  # noqa: E402
from querywarden.fingerprint import identify  # noqa: E402
from querywarden.judge import compare, load_of  # noqa: E402
from querywarden.observation import Observation, Outcome  # noqa: E402
from querywarden.policy import DEFAULT_PINNED_SETTINGS, MeasureSettings, Policy  # noqa: E402
from querywarden.query import GuardedQuery  # noqa: E402
from querywarden.seeding.seed import Seed, ensure_template  # noqa: E402
from querywarden.timing_stats import TimingComparison  # noqa: E402
from querywarden.verdict import QueryResult  # noqa: E402

EXAMPLE = HERE.parents[1] / "examples" / "timetracker"
DEFAULT_DSN = os.environ.get("QUERYWARDEN_TEST_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")
INHERIT = -1.0  # sentinel calls-per-minute of a scenario query that keeps the base query's rate
PB_THRESHOLD = 1.10  # --benchmark-compare-fail=median:10%
WORK_RECALL_RATIO = 1.5
STORED_LEVELS = (1.0, 1.3, 1.5, 2.0)  # the stored-timing mode of the sweep cannot see less than x1.3: not run below

Profile = tuple[tuple[str, str], ...]
DEFAULT_PROFILE: Profile = ()


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


class Interrupted(Exception):
    """A run that other sessions on the shared server cut short (a terminated connection): it is run again."""


RETRIES: list[str] = []


def retrying(what: str, action: Callable[[], Any], attempts: int = 4) -> Any:
    """Run `action`, again after a pause when the shared server drops its connection (other test suites
    on this server terminate backends and drop databases); every retry is counted in the report."""
    for attempt in range(attempts):
        try:
            return action()
        except (DatabaseError, psycopg.OperationalError, Interrupted) as exc:
            if attempt == attempts - 1:
                raise
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            RETRIES.append(f"{what}: {first[:200]}")
            log(f"  retrying {what} after: {first[:200]}")
            time.sleep(2.0 * (attempt + 1))
    raise AssertionError("unreachable")


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


# ----------------------------------------------------------------------------------------- corpus


def base_catalog() -> list[GuardedQuery]:
    queries = load_catalogs([EXAMPLE / "queries.sql"])
    queries += parse_catalog(EXTRA_CATALOG, HERE / "corpus.py")
    return queries


def scenario_queries(scenario: Scenario, base: Mapping[str, GuardedQuery]) -> dict[str, GuardedQuery]:
    """The scenario's version of each query it changes (same names as the base catalog)."""
    if not scenario.catalog.strip():
        return {}
    found = {}
    for query in parse_catalog(scenario.catalog, HERE / f"corpus.py[{scenario.id}]", default_calls_per_minute=INHERIT):
        if query.name not in base:
            raise SystemExit(f"corpus: scenario {scenario.id} changes {query.name!r}, which is not in the base catalog")
        if query.calls_per_minute == INHERIT:
            query = replace(query, calls_per_minute=base[query.name].calls_per_minute)
        found[query.name] = query
    return found


def is_write(query: GuardedQuery) -> bool:
    return identify(query.sql).kind != "read"


def profile_of(settings: Mapping[str, str]) -> Profile:
    return tuple(sorted(settings.items()))


def measure_settings(profile: Profile) -> MeasureSettings:
    return MeasureSettings(pinned={**DEFAULT_PINNED_SETTINGS, **dict(profile)})


# ----------------------------------------------------------------------------------------- databases


@dataclass(frozen=True)
class DbKey:
    scale: float
    schema: tuple[str, ...] = ()
    migration: str = ""

    @property
    def label(self) -> str:
        parts = [f"scale {self.scale:g}"]
        parts += [Path(item).stem for item in self.schema]
        if self.migration:
            parts.append(self.migration)
        return ", ".join(parts)

    @property
    def base(self) -> DbKey:
        return DbKey(self.scale)


def db_key(scenario: Scenario) -> DbKey:
    return DbKey(scenario.scale, tuple(scenario.schema), scenario.migration)


@dataclass
class Database:
    key: DbKey
    seed: Seed
    qw_dsn: str  # querywarden measures here (its writes on clones of it)
    pb_dsn: str  # pytest-benchmark times here: a second clone, so its rolled-back writes touch nothing of ours

    @property
    def qw_dbname(self) -> str:
        return str(conninfo_to_dict(self.qw_dsn)["dbname"])


def open_database(server: Server, key: DbKey, stack: ExitStack) -> Database:
    schema = ("schema.sql", *(str(SCHEMA_DIR / item) for item in key.schema))
    seed = Seed(("seed.sql",), key.scale, EXAMPLE, schema=schema)
    started = time.perf_counter()
    template = retrying("a template", lambda: ensure_template(server, seed, lambda line: log(f"    {line}")))
    qw_dsn = retrying("a clone", lambda: stack.enter_context(server.clone(template, prefix="qw_detect")))
    pb_dsn = retrying("a clone", lambda: stack.enter_context(server.clone(template, prefix="qw_detect_pb")))
    if key.migration:
        for dsn in (qw_dsn, pb_dsn):
            with connect(dsn, autocommit=True) as conn:
                conn.execute(key.migration)
    log(f"  database [{key.label}]: template {template}, two clones, in {time.perf_counter() - started:.1f} s")
    return Database(key, seed, qw_dsn, pb_dsn)


# ----------------------------------------------------------------------------------------- cases and records


@dataclass(frozen=True)
class Case:
    """One query of one scenario run: what is measured, what it is compared with, what is right."""

    group: str  # unchanged | scenario | sweep | sweep-stored
    scenario: str
    query: GuardedQuery  # as measured; its name is unique within a run
    base_name: str
    base_query: GuardedQuery
    expect: str
    statement_count: int = 1
    base_statement_count: int = 1
    replay: bool = True  # let querywarden replay the baseline SQL (it does when the SQL changed)
    level: float | None = None
    kind: str = ""  # regression | benign | unchanged | unaffected
    timing_only: bool = False


@dataclass
class Record:
    tool: str
    case: Case
    rep: int
    verdict: str
    blocking: bool
    seconds: float  # time to this verdict, the run's fixed overhead not included
    overhead_share: float  # the run's fixed overhead (connect, probe / pytest start-up) divided by its queries
    time_ratio: float | None = None
    work_ratio: float | None = None
    reasons: tuple[str, ...] = ()
    before: Observation | None = None
    after: Outcome | None = None
    replay: TimingComparison | None = None

    @property
    def non_pass(self) -> bool:
        return self.verdict != "pass"


def work_ratio(before: Observation, after: Outcome) -> float | None:
    if not isinstance(after, Observation):
        return None
    blocks = max(after.buffers.total, 1) / max(before.buffers.total, 1)
    statements = after.statement_count / max(before.statement_count, 1)
    return max(blocks, statements)


# ----------------------------------------------------------------------------------------- new queries

# Queries no baseline knows, at production rates, on the scale-0.1 clone (time_entries: ~1,100 blocks,
# over `large_relation_blocks`): a hot lookup on an unindexed column (a Seq Scan of the large table),
# the same rate served by the primary key, and a heavy report run a few times a minute.
NEW_CATALOG = """
-- name: new_entries_by_description
-- calls-per-minute: 20000
-- params: {"description": "Sprint planning"}
SELECT id, user_id, started_at, duration_s
FROM time_entries
WHERE description = %(description)s;

-- name: new_entry_summary
-- calls-per-minute: 20000
-- params: {"entry_id": 51234}
SELECT description, duration_s, billable
FROM time_entries
WHERE id = %(entry_id)s;

-- name: new_project_totals_report
-- calls-per-minute: 5
SELECT project_id, count(*) AS entries, sum(duration_s) AS seconds
FROM time_entries
WHERE stopped_at IS NOT NULL
GROUP BY project_id
ORDER BY seconds DESC;
"""


@dataclass(frozen=True)
class NewCase:
    """A query with no baseline and whether it must block: judged on its own cost, not on a difference."""

    label: str
    query: GuardedQuery
    must_block: bool


def new_cases() -> list[NewCase]:
    queries = {q.name: q for q in parse_catalog(NEW_CATALOG, HERE / "run.py[NEW_CATALOG]")}
    return [
        NewCase("new heavy hot", queries["new_entries_by_description"], must_block=True),
        NewCase("new cheap hot", queries["new_entry_summary"], must_block=False),
        NewCase("new heavy rare", queries["new_project_totals_report"], must_block=False),
    ]


@dataclass(frozen=True)
class NewRecord:
    case: NewCase
    rep: int
    verdict: str
    blocking: bool
    cores: float | None  # production cores the query would keep busy, as the judge projects them (None: unmeasured)
    reasons: tuple[str, ...]

    @property
    def right(self) -> bool:
        """Blocked when it must block; otherwise recorded as new without blocking (not an error, not a timeout)."""
        return self.blocking if self.case.must_block else (self.verdict == "new" and not self.blocking)


# ----------------------------------------------------------------------------------------- querywarden


class Stamps:
    """Progress lines of the engine with their times, to attribute the run's time to queries."""

    _NAME = re.compile(r"^(?:measuring|replaying the baseline SQL of) (\S+)")

    def __init__(self) -> None:
        self.lines: list[tuple[float, str]] = []

    def __call__(self, line: str) -> None:
        self.lines.append((time.perf_counter(), line))

    def split(self, started: float, ended: float) -> tuple[float, dict[str, float]]:
        """(time before the first query: connect, session set-up, calibration probe), seconds per query."""
        per: dict[str, float] = defaultdict(float)
        if not self.lines:
            return ended - started, {}
        for (at, line), (until, _) in zip(self.lines, [*self.lines[1:], (ended, "")]):
            match = self._NAME.match(line)
            if match:
                per[match.group(1)] += until - at
        return self.lines[0][0] - started, dict(per)


class Querywarden:
    def __init__(self, server: Server, policy: Policy) -> None:
        self.server = server
        self.policy = policy
        self.baselines: dict[tuple[float, Profile], dict[str, Observation]] = {}
        self.run_walls: list[tuple[str, float, int]] = []  # (group, wall seconds, queries)
        # timing-only verdicts measured again: (group, first verdict, verdict after the second measurement) -> count
        self.remeasured: Counter[tuple[str, str, str]] = Counter()

    def record_baselines(self, db: Database, profile: Profile, queries: Sequence[GuardedQuery], directory: Path) -> None:
        store = BaselineStore(directory)
        place = database_site(self.server, db.qw_dbname, db.seed.data_fingerprint())
        refresh(evaluate(place.statements(queries, {}), place.site, measure_settings(profile), self.policy, confirm_warns=False), store)
        self.baselines[(db.key.scale, profile)] = store.load_all()  # read back: what `check` compares with

    def baseline(self, scale: float, profile: Profile, name: str) -> Observation:
        return self.baselines[(scale, profile)][name]

    def run(self, db: Database, profile: Profile, cases: Sequence[Case], rep: int) -> list[Record]:
        place = database_site(self.server, db.qw_dbname, db.seed.data_fingerprint())
        before = {c.query.name: self.baseline(db.key.scale, profile, c.base_name) for c in cases}
        for case in cases:
            if case.base_statement_count != 1:
                before[case.query.name] = replace(before[case.query.name], statement_count=case.base_statement_count)
        stamps = Stamps()
        started = time.perf_counter()
        # As `check` does: the engine measures, replays changed SQL, judges, and measures a block or warn
        # that rests on timing alone once more.
        statements = [
            Statement(c.query, place.database, before[c.query.name], executions=c.statement_count, replay=c.replay)
            for c in cases
        ]
        evaluation = evaluate(statements, place.site, measure_settings(profile), self.policy, progress=stamps)
        for position, first in evaluation.confirmed.items():
            case = cases[position]
            self.remeasured[(case.group, first.verdict.value, evaluation.results[position].verdict.value)] += 1
        records = []
        for position, case in enumerate(cases):
            after, result = evaluation.outcomes[position], evaluation.results[position]
            replay = evaluation.replays.get(position)
            records.append(
                Record(
                    "querywarden", case, rep, result.verdict.value, result.blocking, 0.0, 0.0,
                    time_ratio=replay.ratio if replay else result.time_ratio,
                    work_ratio=work_ratio(before[case.query.name], after),
                    reasons=result.reasons, before=before[case.query.name], after=after, replay=replay,
                )
            )
        ended = time.perf_counter()
        overhead, per = stamps.split(started, ended)
        for record in records:
            record.seconds = per.get(record.case.query.name, 0.0)
            record.overhead_share = overhead / len(records)
        self.run_walls.append((cases[0].group, ended - started, len(cases)))
        return records

    def rejudge(self, record: Record, policy: Policy) -> QueryResult:
        assert record.before is not None and record.after is not None
        return compare(record.case.query.name, record.before, record.after, policy, None, record.replay)

    def run_new(self, db: Database, case: NewCase, rep: int) -> NewRecord:
        """One `check` of a catalog holding only `case`'s query, with no baseline: measured and judged afresh,
        so every run's verdict rests on its own measurement."""
        place = database_site(self.server, db.qw_dbname, db.seed.data_fingerprint())
        evaluation = evaluate(place.statements([case.query], {}), place.site, measure_settings(DEFAULT_PROFILE), self.policy)
        after, result = evaluation.outcomes[0], evaluation.results[0]
        cores = load_of(after).cores if isinstance(after, Observation) else None
        return NewRecord(case, rep, result.verdict.value, result.blocking, cores, result.reasons)


# ----------------------------------------------------------------------------------------- pytest-benchmark

PB_FILE = '''"""pytest-benchmark timing of scenario {scenario!r} ({side}), generated by benchmarks/detection/run.py."""

import psycopg
import pytest

DSN = {dsn!r}
PINNED = {pinned!r}


@pytest.fixture(scope="module")
def conn():
    connection = psycopg.connect(DSN, autocommit=True)
    connection.prepare_threshold = None  # custom plans, as querywarden measures them
    for name, value in PINNED.items():
        connection.execute("SELECT set_config(%s, %s, false)", (name, value))
    yield connection
    connection.close()


def run(conn, sql, params, times, write):
    with conn.cursor() as cur:
        for _ in range(times):
            if write:
                cur.execute("BEGIN")
            cur.execute(sql, params)
            if cur.description is not None:
                cur.fetchall()
            if write:
                cur.execute("ROLLBACK")
'''

PB_TEST = '''

def test_{name}(benchmark, conn):
    benchmark(run, conn, {sql!r}, {params!r}, {times!r}, {write!r})
'''


def pb_source(scenario: str, side: str, dsn: str, profile: Profile, tests: Sequence[tuple[str, GuardedQuery, int]]) -> str:
    text = PB_FILE.format(scenario=scenario, side=side, dsn=dsn, pinned={**DEFAULT_PINNED_SETTINGS, **dict(profile)})
    for name, query, times in tests:
        text += PB_TEST.format(name=name, sql=query.sql, params=query.params, times=times, write=is_write(query))
    return text


def test_name(case: Case) -> str:
    return re.sub(r"\W", "_", case.query.name)


@dataclass
class PbSuite:
    """One directory pair (baseline side, current side) of generated pytest files, with its own storage."""

    root: Path
    base_db: Database
    db: Database
    profile: Profile
    files: dict[str, list[Case]] = field(default_factory=dict)  # file name -> its cases
    baseline: dict[str, float] = field(default_factory=dict)  # test fullname -> median seconds

    @property
    def base_dir(self) -> Path:
        return self.root / "baseline"

    @property
    def current_dir(self) -> Path:
        return self.root / "current"

    @property
    def storage(self) -> Path:
        return self.root / "storage"

    def add(self, file: str, cases: Sequence[Case]) -> None:
        self.files.setdefault(file, []).extend(cases)

    def write(self) -> None:
        for directory in (self.base_dir, self.current_dir):
            directory.mkdir(parents=True, exist_ok=True)
            (directory / "pytest.ini").write_text("[pytest]\n")
        for file, cases in self.files.items():
            base_tests = [(test_name(c), c.base_query, c.base_statement_count) for c in cases]
            current_tests = [(test_name(c), c.query, c.statement_count) for c in cases]
            scenario = cases[0].scenario
            (self.base_dir / file).write_text(pb_source(scenario, "baseline", self.base_db.pb_dsn, self.profile, base_tests))
            (self.current_dir / file).write_text(pb_source(scenario, "change", self.db.pb_dsn, self.profile, current_tests))


class PytestBenchmark:
    def __init__(self, max_time: float, work: Path) -> None:
        self.max_time = max_time
        self.work = work
        self.run_walls: list[tuple[str, float, int]] = []
        self.startup_s: float | None = None

    def _pytest(self, directory: Path, files: Sequence[str], storage: Path, extra: Sequence[str]) -> tuple[int, float, dict[str, Any], str]:
        out = self.work / f"pb-{time.monotonic_ns()}.json"
        command = [
            sys.executable, "-m", "pytest", *files, "-q", "-p", "no:cacheprovider", "-p", "no:querywarden",
            "-p", "no:xdist", "-p", "no:pytest_postgresql", "-p", "no:hypothesispytest",
            "--rootdir", str(directory), "-c", str(directory / "pytest.ini"),
            f"--benchmark-storage=file://{storage}", f"--benchmark-max-time={self.max_time}",
            f"--benchmark-json={out}", "--benchmark-columns=median,rounds", *extra,
        ]
        started = time.perf_counter()
        done = subprocess.run(command, cwd=directory, capture_output=True, text=True, check=False)
        wall = time.perf_counter() - started
        data = json.loads(out.read_text()) if out.exists() else {"benchmarks": []}
        out.unlink(missing_ok=True)
        return done.returncode, wall, data, done.stdout + done.stderr

    def save_baseline(self, suite: PbSuite) -> None:
        suite.write()
        code, _, data, output = self._pytest(suite.base_dir, sorted(suite.files), suite.storage, ["--benchmark-save=baseline"])
        if code != 0:
            raise Interrupted(f"pytest-benchmark baseline failed in {suite.base_dir}: {output[-1500:]}")
        suite.baseline = {b["fullname"]: b["stats"]["median"] for b in data["benchmarks"]}

    def measure_startup(self, suite: PbSuite) -> None:
        """Wall time of a pytest-benchmark session that collects one file and runs nothing."""
        started = time.perf_counter()
        first = sorted(suite.files)[0]
        subprocess.run(
            [sys.executable, "-m", "pytest", first, "-q", "-p", "no:cacheprovider", "-p", "no:querywarden", "-p", "no:xdist",
             "-p", "no:pytest_postgresql", "-p", "no:hypothesispytest", "--rootdir", str(suite.base_dir),
             "-c", str(suite.base_dir / "pytest.ini"), "--collect-only"],
            cwd=suite.base_dir, capture_output=True, check=False,
        )
        self.startup_s = time.perf_counter() - started

    def run(self, suite: PbSuite, files: Sequence[str], rep: int, group: str) -> list[Record]:
        code, wall, data, output = self._pytest(
            suite.current_dir, files, suite.storage,
            ["--benchmark-compare=0001", "--benchmark-compare-fail=median:10%"],
        )
        if code not in (0, 1):
            raise Interrupted(f"pytest-benchmark run failed ({code}) in {suite.current_dir}: {output[-1500:]}")
        current = {b["fullname"]: b for b in data["benchmarks"]}
        cases = [(file, case) for file in files for case in suite.files[file]]
        records = []
        regressed = 0
        for file, case in cases:
            fullname = f"{file}::test_{test_name(case)}"
            bench = current.get(fullname)
            if bench is None:
                raise Interrupted(f"pytest-benchmark: no result for {fullname} in {suite.current_dir}: {output[-1500:]}")
            ratio = bench["stats"]["median"] / suite.baseline[fullname]
            slower = ratio * 100 - 100 > 10  # exactly pytest-benchmark's PercentageRegressionCheck
            regressed += slower
            busy = bench["stats"]["total"]
            records.append(
                Record("pytest-benchmark", case, rep, "fail" if slower else "pass", slower, busy, 0.0, time_ratio=ratio)
            )
        if (code == 1) != bool(regressed):
            log(f"  warning: pytest exit code {code} disagrees with {regressed} tests over +10% in {suite.current_dir}")
        overhead = max(wall - sum(r.seconds for r in records), 0.0)
        for record in records:
            record.overhead_share = overhead / len(records)
        self.run_walls.append((group, wall, len(records)))
        return records


# ----------------------------------------------------------------------------------------- the sweep


def sweep_sql(k: int) -> GuardedQuery:
    """The sweep query with its CPU knob at `k` (k = 0: the null column), at the base query's call rate."""
    base = {q.name: q for q in base_catalog()}[SWEEP.query]
    column = SWEEP.knob.replace("{k}", str(k)) if k > 0 else SWEEP.null
    text = SWEEP.catalog.replace("{column}", column)
    return parse_catalog(text, HERE / "corpus.py[sweep]", default_calls_per_minute=base.calls_per_minute)[0]


def calibrate_sweep(dsn: str, base: GuardedQuery, pairs: int) -> tuple[dict[float, int], float]:
    """Per level, the k of the sweep expression that slows `base` by that ratio on this machine now.

    Interleaved timings of the base query against the knob at two settings, fitted as ratio = 1 + a + b * k.
    Load changes the ratio a given k produces, so the run reports the ratios it measured at each level too.
    """
    probes = (25, 100)
    with connect(dsn, autocommit=True) as conn:
        conn.prepare_threshold = None
        for name, value in DEFAULT_PINNED_SETTINGS.items():
            conn.execute("SELECT set_config(%s, %s, false)", (name, value))

        def timed(sql: str) -> float:
            started = time.perf_counter()
            conn.execute(sql, base.params).fetchall()  # type: ignore[arg-type]
            return time.perf_counter() - started

        excess = {}
        for k in probes:
            variant = sweep_sql(k).sql
            for _ in range(5):
                timed(base.sql), timed(variant)
            a, b = [], []
            for i in range(pairs):
                if i % 2:
                    a.append(timed(base.sql))
                    b.append(timed(variant))
                else:
                    b.append(timed(variant))
                    a.append(timed(base.sql))
            excess[k] = statistics.median(b) / statistics.median(a) - 1.0
    (k1, e1), (k2, e2) = sorted(excess.items())
    slope = max((e2 - e1) / (k2 - k1), 1e-4)  # a line through both points: the knob's fixed cost is its intercept
    intercept = e1 - slope * k1
    ks = {level: max(int(round((level - 1.0 - intercept) / slope)), 1) if level > 1.0 else 0 for level in SWEEP.levels}
    return ks, 1.0 + intercept + slope * 50


# ----------------------------------------------------------------------------------------- the plan


@dataclass
class Plan:
    unchanged: int
    reps: int
    sweep_reps: int
    new_reps: int
    max_time: float


def spread(count: int, slots: int) -> set[int]:
    """`count` slot numbers spread evenly over `slots` slots."""
    if count <= 0:
        return set()
    if count >= slots:
        return set(range(slots))
    return {int(i * slots / count) for i in range(count)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dsn", default=DEFAULT_DSN)
    parser.add_argument("--quick", action="store_true", help="a smoke run: 5 unchanged runs, 1 run per scenario, 3 per sweep level, 5 per new query")
    parser.add_argument("--unchanged", type=int, help="runs of the unchanged catalog (default 50, quick 5)")
    parser.add_argument("--reps", type=int, help="runs of each scenario (default 3, quick 1)")
    parser.add_argument("--sweep-reps", type=int, help="runs of each sweep level (default 20, quick 3)")
    parser.add_argument("--new-reps", type=int, help="runs of each new query, which has no baseline (default 20, quick 5)")
    parser.add_argument("--pb-max-time", type=float, default=0.1, help="pytest-benchmark --benchmark-max-time per test (s)")
    parser.add_argument("--no-pytest-benchmark", action="store_true", help="measure with querywarden only")
    parser.add_argument("--only", help="comma-separated scenario ids (default: all)")
    parser.add_argument("--explain", action="store_true", help="one querywarden pass per scenario, with the reasons; no timing statistics")
    parser.add_argument("--json", type=Path, help="write every verdict (both tools) to this file")
    args = parser.parse_args()
    quick = args.quick or args.explain
    plan = Plan(
        unchanged=args.unchanged if args.unchanged is not None else (5 if quick else 50),
        reps=args.reps if args.reps is not None else (1 if quick else 3),
        sweep_reps=args.sweep_reps if args.sweep_reps is not None else (3 if quick else 20),
        new_reps=args.new_reps if args.new_reps is not None else (5 if quick else 20),
        max_time=args.pb_max_time,
    )
    if args.explain:
        plan = Plan(unchanged=0, reps=1, sweep_reps=0, new_reps=1, max_time=plan.max_time)
    use_pb = not (args.no_pytest_benchmark or args.explain)
    scenarios = [s for s in SCENARIOS if not args.only or s.id in args.only.split(",")]
    wall_started = time.perf_counter()
    load_before = uptime()
    policy = Policy()
    server = Server(args.dsn)
    catalog = base_catalog()
    by_name = {q.name: q for q in catalog}
    reads = [q for q in catalog if not is_write(q)]
    writes = [q for q in catalog if is_write(q)]

    with ExitStack() as stack, tempfile.TemporaryDirectory(prefix="qw_detection_") as tmp:
        work = Path(tmp)
        log(f"detection benchmark: {len(scenarios)} scenarios, plan {plan}, load {load_average()}")
        # ---------------------------------------------------------------- databases
        keys = {DbKey(0.1)} | {db_key(s) for s in scenarios} | {db_key(s).base for s in scenarios}
        databases = {key: open_database(server, key, stack) for key in sorted(keys, key=lambda k: (k.scale, k.schema, k.migration))}
        base01 = databases[DbKey(0.1)]

        # ---------------------------------------------------------------- cases of each scenario
        def scenario_cases(scenario: Scenario) -> list[Case]:
            changed = scenario_queries(scenario, by_name)
            names = [q.name for q in catalog if q.name in changed or q.name in scenario.expect or q.name in scenario.statement_count]
            if scenario.whole_catalog:
                names = [q.name for q in reads] + [q.name for q in writes if q.name in scenario.expect]
            cases = []
            for name in names:
                expect = scenario.expect.get(name, "pass")
                kind = scenario.kind if (name in scenario.expect or name in changed or name in scenario.statement_count) else "unaffected"
                query = changed.get(name, by_name[name])
                cases.append(
                    Case(
                        "scenario", scenario.id, replace(query, name=f"{scenario.id}.{name}"), name, by_name[name], expect,
                        statement_count=scenario.statement_count.get(name, 1), kind=kind, timing_only=scenario.timing_only,
                    )
                )
            return cases

        groups: dict[tuple[DbKey, Profile], list[tuple[Scenario, list[Case]]]] = defaultdict(list)
        for scenario in scenarios:
            groups[(db_key(scenario), profile_of(scenario.settings))].append((scenario, scenario_cases(scenario)))

        def unchanged_cases(with_writes: bool) -> list[Case]:
            chosen = reads + (writes if with_writes else [])
            return [Case("unchanged", "unchanged", replace(q, name=f"unchanged.{q.name}"), q.name, q, "pass", kind="unchanged") for q in chosen]

        # ---------------------------------------------------------------- querywarden baselines
        qw = Querywarden(server, policy)
        needed: dict[tuple[float, Profile], set[str]] = defaultdict(set)
        needed[(0.1, DEFAULT_PROFILE)] |= {q.name for q in catalog}
        for (key, profile), members in groups.items():
            for _, cases in members:
                needed[(key.scale, profile)] |= {c.base_name for c in cases}
        started = time.perf_counter()
        for (scale, profile), names in sorted(needed.items()):
            queries = [q for q in catalog if q.name in names]
            retrying("querywarden baselines", lambda s=scale, p=profile, q=queries: qw.record_baselines(
                databases[DbKey(s)], p, q, work / "baselines" / f"{s:g}-{len(p)}"))
        log(f"  querywarden baselines: {sum(len(n) for n in needed.values())} queries in {time.perf_counter() - started:.1f} s")

        # ---------------------------------------------------------------- the sweep levels
        sweep_base = by_name[SWEEP.query]
        ks: dict[float, int] = {}
        calibration_ratio = float("nan")
        if plan.sweep_reps:
            ks, calibration_ratio = retrying("the sweep calibration", lambda: calibrate_sweep(base01.qw_dsn, sweep_base, 60))
            log(f"  sweep calibration: fitted k=50 -> x{calibration_ratio:.2f} on {SWEEP.query}; k per level {ks}")

        def sweep_cases(stored: bool) -> list[Case]:
            group = "sweep-stored" if stored else "sweep"
            cases = []
            for level, k in ks.items():
                if stored and level not in STORED_LEVELS:
                    continue
                name = f"{group}_{str(level).replace('.', '_')}.{SWEEP.query}"
                cases.append(
                    Case(group, f"sweep x{level:g}", replace(sweep_sql(k), name=name), SWEEP.query, sweep_base,
                         "block" if level > 1.0 else "pass", replay=not stored, level=level, kind="sweep", timing_only=True)
                )
            return cases

        # ---------------------------------------------------------------- pytest-benchmark suites
        pb = PytestBenchmark(plan.max_time, work)
        suites: dict[tuple[DbKey, Profile], PbSuite] = {}

        def suite_for(key: DbKey, profile: Profile) -> PbSuite:
            if (key, profile) not in suites:
                root = work / "pb" / f"suite{len(suites)}"
                suites[(key, profile)] = PbSuite(root, databases[key.base], databases[key], profile)
            return suites[(key, profile)]

        if use_pb:
            started = time.perf_counter()
            main_suite = suite_for(DbKey(0.1), DEFAULT_PROFILE)
            if plan.unchanged:
                main_suite.add("test_unchanged.py", unchanged_cases(False))
            if plan.sweep_reps:
                main_suite.add("test_sweep.py", sweep_cases(False))
            for (key, profile), members in groups.items():
                for scenario, cases in members:
                    suite_for(key, profile).add(f"test_{scenario.id}.py", cases)
            for suite in suites.values():
                retrying("a pytest-benchmark baseline", lambda s=suite: pb.save_baseline(s))
            pb.measure_startup(main_suite)
            log(f"  pytest-benchmark baselines: {len(suites)} suites in {time.perf_counter() - started:.1f} s")

        # ---------------------------------------------------------------- the interleaved runs
        records: list[Record] = []
        slots = max(plan.unchanged, plan.reps, plan.sweep_reps, 1)
        scenario_slots = spread(plan.reps, slots)
        sweep_slots = spread(plan.sweep_reps, slots)
        unchanged_slots = spread(plan.unchanged, slots)
        rng = random.Random(4)
        for slot in range(slots):
            jobs: list[tuple[str, Callable[[], list[Record]]]] = []
            rep = slot
            if slot in unchanged_slots:
                with_writes = bool(scenario_slots) and slot == min(scenario_slots)  # writes cost a clone each: once
                jobs.append(("qw unchanged", lambda w=with_writes, r=rep: qw.run(base01, DEFAULT_PROFILE, unchanged_cases(w), r)))
                if use_pb:
                    jobs.append(("pb unchanged", lambda r=rep: pb.run(main_suite, ["test_unchanged.py"], r, "unchanged")))
            if slot in scenario_slots:
                for (key, profile), members in groups.items():
                    cases = [c for _, group_cases in members for c in group_cases]
                    jobs.append((f"qw scenarios [{key.label}]", lambda k=key, p=profile, c=cases, r=rep: qw.run(databases[k], p, c, r)))
                    if use_pb:
                        files = [f"test_{s.id}.py" for s, _ in members]
                        jobs.append((f"pb scenarios [{key.label}]", lambda k=key, p=profile, f=files, r=rep: pb.run(suite_for(k, p), f, r, "scenario")))
            if slot in sweep_slots:
                jobs.append(("qw sweep", lambda r=rep: qw.run(base01, DEFAULT_PROFILE, sweep_cases(False) + sweep_cases(True), r)))
                if use_pb:
                    jobs.append(("pb sweep", lambda r=rep: pb.run(main_suite, ["test_sweep.py"], r, "sweep")))
            rng.shuffle(jobs)
            slot_started = time.perf_counter()
            for name, job in jobs:
                records.extend(retrying(name, job))
            log(f"  slot {slot + 1}/{slots}: {', '.join(name for name, _ in jobs)} in {time.perf_counter() - slot_started:.1f} s, load {load_average()}")

        # ---------------------------------------------------------------- new queries
        # After the interleaved runs, so their schedule (and its shuffle) is what it was; each round
        # checks every new query once, so drift hits them alike.
        new_records: list[NewRecord] = []
        started = time.perf_counter()
        for rep in range(plan.new_reps):
            for new in new_cases():
                new_records.append(retrying(f"qw new query [{new.label}]", partial(qw.run_new, base01, new, rep)))
        if new_records:
            log(f"  new queries: {len(new_records)} checks in {time.perf_counter() - started:.1f} s, load {load_average()}")

    wall = time.perf_counter() - wall_started
    load_after = uptime()
    if args.explain:
        explain(records, new_records)
    else:
        report(records, new_records, plan, scenarios, ks, calibration_ratio, qw, pb if use_pb else None, policy, wall, load_before, load_after)
    if args.json:
        verdicts = [record_json(r) for r in records] + [new_record_json(r) for r in new_records]
        args.json.write_text(json.dumps(verdicts, indent=1))
        log(f"wrote {len(verdicts)} verdicts to {args.json}")


# ----------------------------------------------------------------------------------------- reporting


def record_json(record: Record) -> dict[str, Any]:
    return {
        "tool": record.tool, "group": record.case.group, "scenario": record.case.scenario, "query": record.case.base_name,
        "kind": record.case.kind, "expect": record.case.expect, "rep": record.rep, "verdict": record.verdict,
        "blocking": record.blocking, "seconds": round(record.seconds, 4), "overhead_share": round(record.overhead_share, 4),
        "time_ratio": record.time_ratio, "work_ratio": record.work_ratio, "level": record.case.level,
        "reasons": list(record.reasons),
        "replay": None if record.replay is None else {
            "ratio": record.replay.ratio, "ci_low": record.replay.ci_low, "ci_high": record.replay.ci_high,
            "p_value": record.replay.p_value, "decision": record.replay.decision, "n": record.replay.n_candidate,
        },
        "probe_ratio": (record.after.timing.probe_ms / record.before.timing.probe_ms)
        if isinstance(record.after, Observation) and record.before and record.after.timing.probe_ms and record.before.timing.probe_ms else None,
    }


def new_record_json(record: NewRecord) -> dict[str, Any]:
    return {
        "tool": "querywarden", "group": "new", "scenario": record.case.label, "query": record.case.query.name,
        "expect": "block" if record.case.must_block else "new", "rep": record.rep, "verdict": record.verdict,
        "blocking": record.blocking, "cores": record.cores, "reasons": list(record.reasons),
    }


def explain(records: Sequence[Record], new_records: Sequence[NewRecord]) -> None:
    for record in records:
        if record.tool != "querywarden" or record.case.kind == "unaffected":
            continue
        before, after = record.before, record.after
        blocks = f"{before.buffers.total} -> {after.buffers.total}" if isinstance(after, Observation) and before else "?"
        print(f"{record.case.scenario:<38} {record.case.base_name:<26} expect {record.case.expect:<5} got {record.verdict:<8} blocks {blocks:<14} work x{record.work_ratio or 0:.2f}")
        for reason in record.reasons:
            print(f"      - {reason}")
    for new in new_records:
        expect = "block" if new.case.must_block else "new"
        print(f"{new.case.label:<38} {new.case.query.name:<26} expect {expect:<5} got {new.verdict}{' (blocking)' if new.blocking else ''}")
        for reason in new.reasons:
            print(f"      - {reason}")


def report_new(new_records: Sequence[NewRecord], policy: Policy) -> None:
    """Per new query: runs judged right, and the median production load the judge projected; wrong runs
    with their reasons."""
    print("new queries (judged on their own cost, no baseline):")
    by_label: dict[str, list[NewRecord]] = defaultdict(list)
    for record in new_records:
        by_label[record.case.label].append(record)
    for position, (label, runs) in enumerate(by_label.items()):
        cores = median_of(r.cores for r in runs)
        shown = "?" if cores is None else f"{cores:.3g}"
        load = (f"projected ≈ {shown} cores of {policy.production_cores:g}, budget {policy.query_cores_budget:g}"
                if position == 0 else f"≈ {shown} cores")
        word = "blocked" if runs[0].case.must_block else "passed"
        print(f"  {label:<16} {word:<7} {sum(r.right for r in runs)}/{len(runs)}   ({load})")
        for record in runs:
            if not record.right:
                blocking = " (blocking)" if record.blocking else ""
                print(f"    run {record.rep}: {record.verdict}{blocking}: {'; '.join(record.reasons)[:400]}")


def pct(part: int, whole: int) -> str:
    return f"{part}/{whole} ({100.0 * part / whole:.1f}%)" if whole else "0/0 (-)"


def quantile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    pos = q * (len(ordered) - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def rare_ok(record: Record) -> bool:
    """A regression of a rare query: "warn" must warn; "flag" (near the DB-time budget) may warn or block."""
    if record.case.expect == "flag":
        return record.verdict != "pass"
    return record.verdict == "warn" and not record.blocking


def hot(case: Case, policy: Policy) -> bool:
    return case.query.calls_per_minute >= policy.hot_calls_per_minute


def scenario_work(records: Sequence[Record]) -> dict[tuple[str, str], float | None]:
    """The work ratio of each (scenario, query), from querywarden's deterministic block counts."""
    found: dict[tuple[str, str], float | None] = {}
    for record in records:
        if record.tool == "querywarden" and record.case.group == "scenario":
            key = (record.case.scenario, record.case.base_name)
            if found.get(key) is None:
                found[key] = record.work_ratio
    return found


def buckets(records: Sequence[Record], policy: Policy, work: Mapping[tuple[str, str], float | None]) -> dict[str, list[Record]]:
    out: dict[str, list[Record]] = defaultdict(list)
    for record in records:
        case = record.case
        if case.group == "unchanged":
            out["unchanged"].append(record)
        elif case.group == "scenario":
            if case.expect == "block":
                ratio = work.get((case.scenario, case.base_name))
                if not case.timing_only and hot(case, policy) and ratio is not None and ratio >= WORK_RECALL_RATIO:
                    out["work"].append(record)
                elif case.timing_only:
                    out["timing"].append(record)
                else:
                    out["small"].append(record)
            elif case.expect in ("warn", "flag"):
                out["rare"].append(record)
            elif case.kind == "unaffected":
                out["unaffected"].append(record)
            else:
                out["benign"].append(record)
    return out


def summary_lines(records: Sequence[Record], policy: Policy, work: Mapping[tuple[str, str], float | None], tool: str) -> dict[str, str]:
    mine = [r for r in records if r.tool == tool]
    b = buckets(mine, policy, work)
    unchanged_runs: dict[int, list[Record]] = defaultdict(list)
    for record in b["unchanged"]:
        unchanged_runs[record.rep].append(record)
    runs_blocked = sum(any(r.blocking for r in run) for run in unchanged_runs.values())
    runs_nonpass = sum(any(r.non_pass for r in run) for run in unchanged_runs.values())
    rare = b["rare"]
    rare_right = sum(rare_ok(r) for r in rare)
    return {
        "recall": pct(sum(r.blocking for r in b["work"]), len(b["work"])),
        "timing": pct(sum(r.blocking for r in b["timing"]), len(b["timing"])),
        "small": pct(sum(r.blocking for r in b["small"]), len(b["small"])),
        "rare": f"{rare_right}/{len(rare)} right ({sum(r.verdict == 'warn' for r in rare)} warn, {sum(r.blocking for r in rare)} block, {sum(r.verdict == 'pass' for r in rare)} pass)",
        "benign_block": pct(sum(r.blocking for r in b["benign"]), len(b["benign"])),
        "benign_nonpass": pct(sum(r.non_pass for r in b["benign"]), len(b["benign"])),
        "unaffected_block": pct(sum(r.blocking for r in b["unaffected"]), len(b["unaffected"])),
        "unaffected_nonpass": pct(sum(r.non_pass for r in b["unaffected"]), len(b["unaffected"])),
        "unchanged_runs_block": pct(runs_blocked, len(unchanged_runs)),
        "unchanged_runs_nonpass": pct(runs_nonpass, len(unchanged_runs)),
        "unchanged_q_block": pct(sum(r.blocking for r in b["unchanged"]), len(b["unchanged"])),
        "unchanged_q_nonpass": pct(sum(r.non_pass for r in b["unchanged"]), len(b["unchanged"])),
    }


def verdict_counts(records: Iterable[Record]) -> str:
    counts = Counter(r.verdict for r in records)
    return " ".join(f"{verdict}x{n}" for verdict, n in sorted(counts.items(), key=lambda kv: -kv[1])) or "-"


def median_of(values: Iterable[float | None]) -> float | None:
    found = [v for v in values if v is not None and math.isfinite(v)]
    return statistics.median(found) if found else None


def ratio_text(value: float | None) -> str:
    return "-" if value is None else f"x{value:.2f}"


def report(
    records: Sequence[Record], new_records: Sequence[NewRecord], plan: Plan, scenarios: Sequence[Scenario], ks: Mapping[float, int], calibration_ratio: float,
    qw: Querywarden, pb: PytestBenchmark | None, policy: Policy, wall: float, load_before: str, load_after: str,
) -> None:
    work = scenario_work(records)
    tools = ["querywarden"] + (["pytest-benchmark"] if pb else [])
    print("=" * 100)
    print("querywarden detection benchmark (issue 4)")
    print(f"machine: {os.cpu_count()} cores, Python {platform.python_version()}, {platform.platform()}")
    print(f"load before: {load_before}")
    print(f"load after:  {load_after}")
    print(f"plan: {plan.unchanged} unchanged runs, {plan.reps} runs per scenario, {plan.sweep_reps} runs per sweep level; "
          f"pytest-benchmark --benchmark-max-time={plan.max_time:g} --benchmark-compare-fail=median:10%")
    print(f"policy: {policy}")
    print()

    # ------------------------------------------------------------ per scenario
    print("Scenarios: verdicts per query (querywarden | pytest-benchmark); work = blocks or statements after/before;")
    print("A/B = querywarden's same-run ratio (or stored-timing ratio), pb = pytest-benchmark median ratio")
    header = f"{'scenario':<38} {'query':<24} {'cpm':>6} {'expect':<6} {'work':>7} {'A/B':>6} {'querywarden':<22} {'pb':>6} {'pytest-benchmark':<18}"
    print(header)
    print("-" * len(header))
    by_key: dict[tuple[str, str], list[Record]] = defaultdict(list)
    for record in records:
        if record.case.group == "scenario":
            by_key[(record.case.scenario, record.case.base_name)].append(record)
    for scenario in scenarios:
        for (sid, name), group in by_key.items():
            if sid != scenario.id:
                continue
            q = [r for r in group if r.tool == "querywarden"]
            p = [r for r in group if r.tool == "pytest-benchmark"]
            case = q[0].case
            if case.kind == "unaffected" and all(r.verdict == "pass" for r in q) and not any(r.blocking for r in p):
                continue  # unaffected and quiet: summarised below
            print(
                f"{sid:<38} {name:<24} {case.query.calls_per_minute:>6g} {case.expect:<6} {ratio_text(work.get((sid, name))):>7} "
                f"{ratio_text(median_of(r.time_ratio for r in q)):>6} {verdict_counts(q):<22} "
                f"{ratio_text(median_of(r.time_ratio for r in p)):>6} {verdict_counts(p):<18}"
            )
    unaffected = [r for r in records if r.case.kind == "unaffected"]
    for tool in tools:
        mine = [r for r in unaffected if r.tool == tool]
        print(f"  queries unaffected by the migrations, {tool}: {verdict_counts(mine)}")
    print()

    # ------------------------------------------------------------ headline figures
    lines = {tool: summary_lines(records, policy, work, tool) for tool in tools}
    labels = [
        ("recall", f"recall: hot regressions doing >= {WORK_RECALL_RATIO}x the work (blocking)"),
        ("small", "blocking regressions with < 1.5x work (spill, small tables)"),
        ("timing", "CPU-only regressions of the corpus (1.3x, 2x) blocked"),
        ("rare", "rare-query regressions (right: warn; near the budget: warn or block)"),
        ("benign_block", "false alarms, benign changes: blocking"),
        ("benign_nonpass", "false alarms, benign changes: any non-pass"),
        ("unaffected_block", "false alarms, queries a migration leaves alone: blocking"),
        ("unaffected_nonpass", "false alarms, queries a migration leaves alone: non-pass"),
        ("unchanged_runs_block", "false alarms, unchanged runs (whole catalog): blocking"),
        ("unchanged_runs_nonpass", "false alarms, unchanged runs (whole catalog): non-pass"),
        ("unchanged_q_block", "false alarms, unchanged queries: blocking"),
        ("unchanged_q_nonpass", "false alarms, unchanged queries: non-pass"),
    ]
    width = max(len(label) for _, label in labels)
    print(f"{'':<{width}}  " + "  ".join(f"{tool:<22}" for tool in tools))
    for key, label in labels:
        print(f"{label:<{width}}  " + "  ".join(f"{lines[tool][key]:<22}" for tool in tools))
    print()

    # ------------------------------------------------------------ new queries
    if new_records:
        report_new(new_records, policy)
        print()

    # ------------------------------------------------------------ misses and false alarms
    print("Misses and false alarms (querywarden):")
    b = buckets([r for r in records if r.tool == "querywarden"], policy, work)
    shown = 0
    for bucket, bad in (("work", lambda r: not r.blocking), ("small", lambda r: not r.blocking), ("timing", lambda r: not r.blocking),
                        ("rare", lambda r: not rare_ok(r)), ("benign", lambda r: r.non_pass),
                        ("unaffected", lambda r: r.non_pass), ("unchanged", lambda r: r.non_pass)):
        for record in b[bucket]:
            if bad(record):
                shown += 1
                reasons = "; ".join(record.reasons)
                if record.replay is not None and not any(reason.startswith("same-run A/B") for reason in record.reasons):
                    ab = record.replay
                    reasons += (f" [same-run A/B {ab.decision}: x{ab.ratio:.2f} [{ab.ci_low:.2f}-{ab.ci_high:.2f}], "
                                f"p={ab.p_value:.2g}, {ab.n_candidate} pairs]")
                print(f"  [{bucket}] {record.case.scenario} / {record.case.base_name} run {record.rep}: {record.verdict}: {reasons[:400]}")
    if not shown:
        print("  none")
    print()

    # ------------------------------------------------------------ the sweep
    if ks:
        print(f"CPU-only slowdown sweep on {SWEEP.query} ({qw.baseline(0.1, DEFAULT_PROFILE, SWEEP.query).calls_per_minute:g} calls/min, "
              f"calibration fit: k=50 -> x{calibration_ratio:.2f}; k per level {dict(ks)}; the A/B column is the ratio measured)")
        header = f"{'level':>6} {'A/B ratio':>10} {'qw same-run A/B':>16} {'qw stored: block':>17} {'qw stored: non-pass':>20} {'pb ratio':>9} {'pytest-benchmark':>17}"
        print(header)
        rows = defaultdict(list)
        for record in records:
            if record.case.group in ("sweep", "sweep-stored"):
                rows[(record.case.level, record.tool, record.case.group)].append(record)
        detect: dict[str, dict[float, float]] = defaultdict(dict)
        measured = {level: median_of(r.time_ratio for r in rows[(level, "querywarden", "sweep")]) for level in ks}
        for level in ks:
            ab = rows[(level, "querywarden", "sweep")]
            stored = rows[(level, "querywarden", "sweep-stored")]
            pbr = rows[(level, "pytest-benchmark", "sweep")]
            detect["qw A/B"][level] = sum(r.blocking for r in ab) / len(ab) if ab else float("nan")
            detect["qw stored"][level] = sum(r.blocking for r in stored) / len(stored) if stored else float("nan")
            detect["qw stored non-pass"][level] = sum(r.non_pass for r in stored) / len(stored) if stored else float("nan")
            if pbr:
                detect["pytest-benchmark"][level] = sum(r.blocking for r in pbr) / len(pbr)
            print(
                f"{level:>6g} {ratio_text(median_of(r.time_ratio for r in ab)):>10} {pct(sum(r.blocking for r in ab), len(ab)):>16} "
                f"{pct(sum(r.blocking for r in stored), len(stored)):>17} {pct(sum(r.non_pass for r in stored), len(stored)):>20} "
                f"{ratio_text(median_of(r.time_ratio for r in pbr)):>9} {pct(sum(r.blocking for r in pbr), len(pbr)):>17}"
            )
        # false-alarm rates that go with each detection mode
        qwr = [r for r in records if r.tool == "querywarden"]
        benign_replayed = [r for r in qwr if r.case.group == "scenario" and r.case.expect == "pass" and r.replay is not None]
        null_ab = rows[(1.0, "querywarden", "sweep")]
        unchanged_q = [r for r in qwr if r.case.group == "unchanged"]
        fa = {
            "qw A/B": (sum(r.blocking for r in benign_replayed + null_ab), len(benign_replayed + null_ab)),
            "qw stored": (sum(r.blocking for r in unchanged_q + rows[(1.0, "querywarden", "sweep-stored")]),
                          len(unchanged_q + rows[(1.0, "querywarden", "sweep-stored")])),
            "qw stored non-pass": (sum(r.non_pass for r in unchanged_q + rows[(1.0, "querywarden", "sweep-stored")]),
                                   len(unchanged_q + rows[(1.0, "querywarden", "sweep-stored")])),
        }
        if pb:
            pbu = [r for r in records if r.tool == "pytest-benchmark" and r.case.group == "unchanged"] + rows[(1.0, "pytest-benchmark", "sweep")]
            fa["pytest-benchmark"] = (sum(r.blocking for r in pbu), len(pbu))
        print("smallest CPU-only slowdown detected in >= 95% of runs, with the mode's false-alarm rate:")
        for mode, rates in detect.items():
            bad, total = fa[mode]
            fa_rate = bad / total if total else float("nan")
            found = [level for level, rate in sorted(rates.items()) if level > 1.0 and rate >= 0.95]
            smallest = f"x{found[0]:g} (A/B-measured {ratio_text(measured.get(found[0]))})" if found else "none of the levels"
            verdict = "meets <= 1%" if fa_rate <= 0.01 else "FAILS <= 1%"
            print(f"  {mode:<20} {smallest:<36} false alarms {pct(bad, total)} ({verdict})")
        print()

    # ------------------------------------------------------------ the second measurement
    print("Timing-only verdicts measured again (as `check` does), first verdict -> verdict after the second measurement:")
    if not qw.remeasured:
        print("  none")
    for kind in sorted({g for g, _, _ in qw.remeasured}):
        moves = sorted(((was, now), n) for (g, was, now), n in qw.remeasured.items() if g == kind)
        print(f"  {kind:<13} " + ", ".join(f"{was}->{now} x{n}" for (was, now), n in moves))
    print()

    # ------------------------------------------------------------ time to a verdict
    print("Time to a verdict per query (seconds): median / p90 of the query's own time; fixed cost per run; wall per query")
    for tool in tools:
        for group in ("unchanged", "scenario", "sweep"):
            mine = [r for r in records if r.tool == tool and r.case.group.startswith(group)]
            if not mine:
                continue
            own = [r.seconds for r in mine]
            walls = [(w, n) for g, w, n in (qw.run_walls if tool == "querywarden" else pb.run_walls if pb else []) if g.startswith(group)]
            per_query_wall = sum(w for w, _ in walls) / max(sum(n for _, n in walls), 1)
            fixed = statistics.median(r.overhead_share for r in mine) if mine else float("nan")
            print(f"  {tool:<17} {group:<10} own {quantile(own, 0.5):.3f} / {quantile(own, 0.9):.3f}   "
                  f"fixed share {fixed:.3f}   wall/query {per_query_wall:.3f}   ({len(walls)} runs, {len(mine)} verdicts)")
    if pb and pb.startup_s is not None:
        print(f"  pytest start-up (collect one file, run nothing): {pb.startup_s:.2f} s")
    print()

    # ------------------------------------------------------------ other thresholds
    print("What other Policy thresholds would have given (querywarden's measurements re-judged):")
    variants = [
        ("default", policy),
        ("buffers_floor=2", replace(policy, buffers_floor=2)),
        ("buffers_tolerance=0.10", replace(policy, buffers_tolerance=0.10)),
        ("cost_tolerance=0.10", replace(policy, cost_tolerance=0.10)),
        ("time_tolerance=0.15", replace(policy, time_tolerance=0.15)),
        ("stored_time_block_ratio=1.5", replace(policy, stored_time_block_ratio=1.5)),
        ("stored_time_block_ratio=1.3", replace(policy, stored_time_block_ratio=1.3)),
        ("hot_calls_per_minute=250", replace(policy, hot_calls_per_minute=250)),
    ]
    qwr = [r for r in records if r.tool == "querywarden" and isinstance(r.before, Observation) and r.after is not None]
    header = f"{'policy':<30} {'recall':>16} {'<1.5x work':>12} {'CPU-only':>12} {'rare ok':>10} {'benign FA':>12} {'unchanged FA':>14} {'non-pass FA':>14} {'sweep stored 1.3/1.5/2':>24}"
    print(header)
    for label, alternative in variants:
        rejudged = []
        for record in qwr:
            result = qw.rejudge(record, alternative)
            rejudged.append(replace(record, verdict=result.verdict.value, blocking=result.blocking))
        bb = buckets(rejudged, alternative, work)
        fa_pool = bb["benign"] + bb["unaffected"] + bb["unchanged"]
        sweep_stored = {lvl: [r for r in rejudged if r.case.group == "sweep-stored" and r.case.level == lvl] for lvl in (1.3, 1.5, 2.0)}
        sweep_text = "/".join(f"{sum(r.blocking for r in v) / len(v):.0%}" if v else "-" for v in sweep_stored.values())
        print(
            f"{label:<30} {pct(sum(r.blocking for r in bb['work']), len(bb['work'])):>16} "
            f"{pct(sum(r.blocking for r in bb['small']), len(bb['small'])):>12} "
            f"{pct(sum(r.blocking for r in bb['timing']), len(bb['timing'])):>12} "
            f"{sum(rare_ok(r) for r in bb['rare'])}/{len(bb['rare']):<8} "
            f"{pct(sum(r.blocking for r in bb['benign'] + bb['unaffected']), len(bb['benign'] + bb['unaffected'])):>12} "
            f"{pct(sum(r.blocking for r in bb['unchanged']), len(bb['unchanged'])):>14} "
            f"{pct(sum(r.non_pass for r in fa_pool), len(fa_pool)):>14} {sweep_text:>24}"
        )
    print("(same-run A/B decisions are made while measuring, with stats.compare_timings' min_effect 1.10 and alpha 0.01: not re-judged here)")
    print()
    print(f"runs repeated because the shared server dropped a connection: {len(RETRIES)}")
    for line in RETRIES[:10]:
        print(f"  {line}")
    print(f"wall time: {wall:.0f} s ({wall / 60:.1f} min)")


if __name__ == "__main__":
    main()
