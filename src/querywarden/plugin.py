"""The pytest plugin: guard the queries a test's code path runs against the test's committed baseline.

    @pytest.mark.hot_path(calls_per_minute=12000)
    def test_dashboard(querywarden, querywarden_db):
        with querywarden.capture(querywarden_db):
            app.dashboard(querywarden_db, user_id=42)

After the test body every distinct statement the block ran is measured and compared with the test's
baseline file; a blocking regression fails the test. Hooks here stay thin: settings resolve at
configure time, measuring and judging live in `guard.py`, capturing in `capture.py`, all imported
only when a test uses the fixtures, so loading the plugin costs a pytest run next to nothing.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import pytest

if TYPE_CHECKING:
    import psycopg

    from .capture import Capture, CapturedStatement
    from .compare import Policy
    from .database import Server
    from .guard import Clone, PathOutcome
    from .measure import MeasureSettings
    from .seed import Seed

DSN_ENV = "QUERYWARDEN_DSN"
UPDATE_FLAG = "--querywarden-update"
STRICT_FLAG = "--querywarden-strict"
DEFAULT_BASELINES = "baselines/tests"
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
    group.addoption(STRICT_FLAG, dest="querywarden_strict", action="store_true", default=False,
                    help="Also fail on baselines no test used and on statements new to, or gone from, a path.")


# --- settings: flag -> environment -> ini -> [tool.querywarden] -> default -------------------------


@dataclass(frozen=True)
class Setting:
    """A resolved value, where it came from, and the directory its relative paths are taken from."""

    value: Any
    origin: str
    base: Path


@dataclass(frozen=True)
class Settings:
    """The plugin's resolved configuration: plain values; each xdist worker resolves its own alike."""

    dsn: Setting
    baselines: Setting
    schema: Setting
    seed: Setting
    scale: Setting
    calls_per_minute: Setting
    hot_calls_per_minute: Setting
    update: bool
    strict: bool
    root: Path

    @property
    def baselines_dir(self) -> Path:
        path = Path(self.baselines.value)
        return path if path.is_absolute() else self.baselines.base / path


def _explicit(config: pytest.Config, option: _Option) -> Setting | None:
    """The value given on the command line, in the environment or in the ini file, if any."""
    invoked = config.invocation_params.dir
    value = config.getoption(option.flag.lstrip("-").replace("-", "_"))
    if value:
        return Setting(tuple(value) if option.multiple else value, option.flag, invoked)
    if option.env and os.environ.get(option.env):
        return Setting(os.environ[option.env], f"${option.env}", invoked)
    ini = config.getini(option.ini)
    if ini:
        overridden = any(str(o).startswith(f"{option.ini}=") for o in (config.getoption("override_ini") or ()))
        if overridden or config.inipath is None:
            origin, base = f"-o {option.ini}", invoked
        else:
            origin, base = f"{option.ini} in {config.inipath.name}", config.inipath.parent
        return Setting(tuple(ini) if option.multiple else str(ini).strip(), origin, base)
    return None


def _number(setting: Setting, what: str) -> Setting:
    try:
        number = float(setting.value)
    except (TypeError, ValueError):
        number = math.nan
    if not math.isfinite(number) or number <= 0:
        raise pytest.UsageError(f"querywarden: {what} from {setting.origin} must be a positive number, not {setting.value!r}")
    return Setting(number, setting.origin, setting.base)


def _options(config: pytest.Config) -> dict[str, Setting | None]:
    found = {option.ini: _explicit(config, option) for option in _OPTIONS}
    for key, what in (("querywarden_scale", "the seed scale"), ("querywarden_calls_per_minute", "the default call rate"),
                      ("querywarden_hot_calls_per_minute", "the hot threshold")):
        given = found[key]
        if given is not None:
            found[key] = _number(given, what)
    return found


def resolve_settings(config: pytest.Config, explicit: Mapping[str, Setting | None]) -> tuple[Settings, Policy, MeasureSettings]:
    """Fill what flags, environment and ini left open from [tool.querywarden], then defaults."""
    from dataclasses import replace

    from .config import load_config

    project = load_config(config.rootpath)
    from_project = f"[tool.querywarden] in {Path(project.source).name}" if project.source != "defaults" else "default"
    root = config.rootpath

    def pick(key: str, fallback: Any, fallback_origin: str, base: Path) -> Setting:
        given = explicit[key]
        return given if given is not None else Setting(fallback, fallback_origin, base)

    settings = Settings(
        dsn=pick("querywarden_dsn", None, "embedded", root),
        baselines=pick("querywarden_baselines", DEFAULT_BASELINES, "default", root),
        schema=pick("querywarden_schema", tuple(project.schema), from_project if project.schema else "none", project.root),
        seed=pick("querywarden_seed", tuple(project.seed), from_project if project.seed else "none", project.root),
        scale=pick("querywarden_scale", project.scale, from_project if project.scale != 1.0 else "default", root),
        calls_per_minute=pick(
            "querywarden_calls_per_minute",
            project.default_calls_per_minute,
            from_project if project.default_calls_per_minute != 60.0 else "default",
            root,
        ),
        hot_calls_per_minute=pick(
            "querywarden_hot_calls_per_minute",
            project.policy.hot_calls_per_minute,
            from_project if project.policy.hot_calls_per_minute != 1000.0 else "default",
            root,
        ),
        update=bool(config.getoption("querywarden_update")),
        strict=bool(config.getoption("querywarden_strict")),
        root=root,
    )
    policy = replace(
        project.policy,
        hot_calls_per_minute=float(settings.hot_calls_per_minute.value),
        strict=settings.strict or project.policy.strict,
    )
    return settings, policy, project.measure


# --- run state -------------------------------------------------------------------------------------


class QuerywardenSession:
    """Everything the plugin keeps for one pytest process: settings, server, template, outcomes."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.explicit = _options(config)
        self._resolved: tuple[Settings, Policy, MeasureSettings] | None = None
        self._stack = ExitStack()
        self._server: Server | None = None
        self.clones: dict[str, Clone] = {}
        self._probe_ms: float | None = None
        self.seed_fingerprint: str | None = None
        self.outcomes: list[dict[str, Any]] = []
        self.collected: set[str] = set()
        self.called: set[str] = set()
        self.guarded: set[str] = set()
        self.partial_modules: set[str] = set()
        self.stale: list[str] = []
        self.removed: list[str] = []
        self.unreadable: list[str] = []
        self.failed = False

    # settings and the server, resolved on first use

    def resolved(self) -> tuple[Settings, Policy, MeasureSettings]:
        if self._resolved is None:
            self._resolved = resolve_settings(self.config, self.explicit)
        return self._resolved

    @property
    def settings(self) -> Settings:
        return self.resolved()[0]

    def server(self) -> Server:
        """The server to seed and clone on: the configured DSN, else an embedded cluster started now."""
        if self._server is None:
            from .database import Server

            dsn = self.settings.dsn.value
            if dsn is None:  # each xdist worker starts its own: they share nothing but the baselines
                from .embedded import EmbeddedCluster

                self.say("no --querywarden-dsn, $QUERYWARDEN_DSN or querywarden_dsn; starting an embedded PostgreSQL cluster")
                dsn = self._stack.enter_context(EmbeddedCluster(progress=self.say))
            self._server = Server(str(dsn))
        return self._server

    def seed(self) -> Seed:
        """Schema and data to build the template from; items stay relative to the data's directory, so the
        data fingerprint recorded in baselines is the same in every checkout."""
        from .errors import ConfigError
        from .seed import Seed

        data, schema = self.settings.seed, self.settings.schema
        if not data.value and not schema.value:
            raise ConfigError(
                "querywarden_db needs a seed: set querywarden_schema and querywarden_seed (SQL files and/or "
                "module:function) in the pytest ini file or `schema`/`seed` in [tool.querywarden], or capture "
                "your own connections instead"
            )
        base = data.base if data.value else schema.base
        schema_items = tuple(_rebase(item, schema.base, base) for item in schema.value)
        return Seed(tuple(data.value), float(self.settings.scale.value), base, schema_items)

    def say(self, message: str) -> None:
        """Progress for people: on the terminal of a plain run, silent in xdist workers."""
        reporter = self.config.pluginmanager.get_plugin("terminalreporter")
        capture = self.config.pluginmanager.get_plugin("capturemanager")
        if reporter is None or hasattr(self.config, "workerinput"):
            return
        with capture.global_and_fixture_disabled() if capture is not None else ExitStack():
            reporter.ensure_newline()
            reporter.write_line(f"querywarden: {message}")

    def probe(self, conn: psycopg.Connection[Any]) -> float:
        """The machine's speed, probed once per process on the first measuring connection (it costs ~0.5 s)."""
        if self._probe_ms is None:
            from .measure import calibration_probe

            self._probe_ms = calibration_probe(conn)
        return self._probe_ms

    def close(self) -> None:
        self._stack.close()

    # one guarded test

    def check(self, item: pytest.Item, guard: Querywarden) -> PathOutcome:
        from .baseline import PathBaselineStore
        from .database import mask_dsn
        from .errors import QuerywardenError
        from .guard import MeasureTarget, PathOutcome, PathSpec, check_path, no_probe

        settings, policy, measure_settings = self.resolved()
        spec = PathSpec(item.nodeid, guard.calls_per_minute, guard.budget_ms, guard.marked)
        store = PathBaselineStore(settings.baselines_dir)
        # The machine probe (~0.5 s) is recorded with new baselines; a check needs it only to confirm a
        # slowdown that only the clock shows, and then probes afresh (see guard.check_path).
        probe = self.probe if settings.update else no_probe
        target = MeasureTarget(measure_settings, self._server, dict(self.clones), probe)
        try:
            return check_path(spec, guard.statements, store, target, policy, update=settings.update, root=settings.root)
        except QuerywardenError as exc:
            text = mask_dsn(str(exc))
            shown = _relative(store.path_for(item.nodeid), settings.root)
            return PathOutcome(item.nodeid, "error", True, (f"ERROR {item.nodeid}: {text}",), f"querywarden: {text}", shown)

    # collection facts, for telling which baselines no test used

    def note_collected(self, items: Sequence[pytest.Item]) -> None:
        self.collected.update(item.nodeid for item in items)

    def to_plain(self) -> dict[str, Any]:
        return {
            "outcomes": self.outcomes,
            "collected": sorted(self.collected),
            "called": sorted(self.called),
            "guarded": sorted(self.guarded),
            "partial_modules": sorted(self.partial_modules),
        }

    def merge(self, data: Mapping[str, Any]) -> None:
        self.outcomes.extend(data.get("outcomes", []))
        for key in ("collected", "called", "guarded", "partial_modules"):
            getattr(self, key).update(data.get(key, []))

    def find_stale(self) -> None:
        """Baselines whose test is gone, or ran without guarding anything; deleted in update mode."""
        if not self.outcomes and not self.collected:
            return
        from .baseline import PathBaselineStore
        from .errors import QuerywardenError

        try:
            settings = self.settings
        except QuerywardenError:
            if self.outcomes:
                raise
            return  # nothing was guarded: a project setting the CLI needs is not this run's business
        store = PathBaselineStore(settings.baselines_dir)
        modules = {nodeid.split("::", 1)[0] for nodeid in self.collected} - self.partial_modules
        for path, test in store.tests().items():
            shown = _relative(path, settings.root)
            if not isinstance(test, str):
                self.unreadable.append(str(test))
                continue
            module = test.split("::", 1)[0]
            gone = not (settings.root / module).exists() or (module in modules and test not in self.collected)
            unguarded = test in self.called and test not in self.guarded
            if not (gone or unguarded):
                continue
            why = "its test no longer exists" if gone else "its test ran without capturing through the querywarden fixture"
            if settings.update:
                store.remove(path)
                self.removed.append(f"{shown} ({test}: {why})")
            else:
                self.stale.append(f"{shown} ({test}: {why})")
        if self.unreadable or (self.stale and settings.strict):
            self.failed = True


SESSION_KEY = pytest.StashKey[QuerywardenSession]()
GUARD_KEY = pytest.StashKey["Querywarden"]()


def _rebase(item: str, base: Path, new_base: Path) -> str:
    """A seed item relative to `base`, made relative to `new_base` (modules and absolute paths stay)."""
    target, colon, function = item.rpartition(":")
    path_part = target if colon and target.endswith(".py") else item
    if base == new_base or Path(path_part).is_absolute() or not (path_part.endswith((".sql", ".py"))):
        return item
    moved = os.path.relpath(base / path_part, new_base)
    return f"{moved}:{function}" if colon and target.endswith(".py") else moved


def _state(config: pytest.Config) -> QuerywardenSession:
    return config.stash[SESSION_KEY]


def _relative(path: Path, root: Path) -> str:
    try:
        return os.path.relpath(path, root)
    except ValueError:
        return str(path)


# --- the fixture object ----------------------------------------------------------------------------


class Querywarden:
    """The `querywarden` fixture: capture what the test's code path runs, to be measured after the test.

    `capture(target)` accepts a psycopg Connection, a SQLAlchemy Engine/Connection/Session or a
    Django connection, and may be nested or repeated; everything captured during the test forms
    its path.
    """

    def __init__(self, test: str, calls_per_minute: float, budget_ms: float | None, marked: bool) -> None:
        from .capture import Capture

        self.test = test
        self.calls_per_minute = calls_per_minute
        self.budget_ms = budget_ms
        self.marked = marked
        self._all: Capture = Capture()

    @contextmanager
    def capture(self, target: object) -> Iterator[Capture]:
        """Record the statements `target` runs inside the block; yields the block's own record."""
        from .capture import capture

        with capture(target, self._all) as block:
            yield block

    @property
    def statements(self) -> tuple[CapturedStatement, ...]:
        """Every statement captured in this test so far, in the order they ran."""
        return self._all.statements

    def __repr__(self) -> str:
        return f"<querywarden {self.test} at {self.calls_per_minute:g} calls/min, {len(self.statements)} statements>"


def _marker_rate(item: pytest.Item, default: float) -> tuple[float, float | None, bool]:
    """Call rate, budget and whether a hot_path marker set them; a malformed marker fails the test."""
    marker = item.get_closest_marker(MARKER)
    if marker is None:
        return default, None, False
    kwargs = dict(marker.kwargs)
    usage = "use @pytest.mark.hot_path(calls_per_minute=12000) or hot_path(calls_per_minute=N, budget_ms=M)"
    if marker.args:
        if len(marker.args) > 1 or "calls_per_minute" in kwargs:
            pytest.fail(f"querywarden: {item.nodeid}: hot_path takes one call rate; {usage}", pytrace=False)
        kwargs["calls_per_minute"] = marker.args[0]
    unknown = sorted(set(kwargs) - {"calls_per_minute", "budget_ms"})
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
    return values["calls_per_minute"], values.get("budget_ms"), True


def _fail_on(error: Exception) -> NoReturn:
    from .database import mask_dsn

    pytest.fail(f"querywarden: {mask_dsn(str(error))}", pytrace=False)


# --- fixtures --------------------------------------------------------------------------------------


@pytest.fixture
def querywarden(request: pytest.FixtureRequest) -> Querywarden:
    """Capture the statements of the test's code path; they are measured and judged after the test."""
    from .errors import QuerywardenError

    state = _state(request.config)
    try:
        default_rate = float(state.settings.calls_per_minute.value)
    except QuerywardenError as exc:
        _fail_on(exc)
    calls, budget, marked = _marker_rate(request.node, default_rate)
    guard = Querywarden(request.node.nodeid, calls, budget, marked)
    request.node.stash[GUARD_KEY] = guard
    return guard


@pytest.fixture(scope="session")
def querywarden_template(request: pytest.FixtureRequest) -> str:
    """Name of the seeded, ANALYZEd template database (built once, reused while the seed is unchanged)."""
    from .errors import QuerywardenError
    from .seed import ensure_template

    state = _state(request.config)
    try:
        seed = state.seed()
        template = ensure_template(state.server(), seed, _seed_progress(state))
        state.seed_fingerprint = seed.data_fingerprint()
    except QuerywardenError as exc:
        _fail_on(exc)
    return template


@pytest.fixture
def querywarden_db_dsn(request: pytest.FixtureRequest, querywarden_template: str) -> Iterator[str]:
    """DSN of a fresh clone of the seeded template for this test (dropped after it)."""
    from .database import dbname_of
    from .errors import QuerywardenError
    from .guard import Clone

    state = _state(request.config)
    try:
        with state.server().clone(querywarden_template, prefix="qw_test") as dsn:
            name = dbname_of(dsn)
            state.clones[name] = Clone(querywarden_template, state.seed_fingerprint)
            try:
                yield dsn
            finally:
                state.clones.pop(name, None)
    except QuerywardenError as exc:
        _fail_on(exc)


@pytest.fixture
def querywarden_db(querywarden_db_dsn: str) -> Iterator[psycopg.Connection[Any]]:
    """A psycopg connection to this test's fresh clone of the seeded template."""
    from .database import connect
    from .errors import QuerywardenError

    try:
        conn = connect(querywarden_db_dsn)
    except QuerywardenError as exc:
        _fail_on(exc)
    try:
        yield conn
    finally:
        conn.close()


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
    state = QuerywardenSession(config)
    config.stash[SESSION_KEY] = state
    config.add_cleanup(state.close)


def pytest_report_header(config: pytest.Config) -> list[str]:
    from .database import mask_dsn
    from .errors import QuerywardenError

    try:
        settings = _state(config).settings
    except QuerywardenError as exc:
        return [f"querywarden: configuration error: {exc}"]
    if settings.dsn.value:
        database = f"{mask_dsn(str(settings.dsn.value))} (from {settings.dsn.origin})"
    else:
        database = f"an embedded throwaway cluster, started on first use (no --querywarden-dsn, ${DSN_ENV} or querywarden_dsn)"
    mode = "; updating baselines" if settings.update else ""
    lines = [
        f"querywarden: database {database}",
        f"querywarden: baselines {_relative(settings.baselines_dir, settings.root)} (from {settings.baselines.origin}){mode}",
    ]
    if settings.seed.value or settings.schema.value:
        schema = f"schema {', '.join(settings.schema.value)} (from {settings.schema.origin}), " if settings.schema.value else ""
        data = f"data {', '.join(settings.seed.value)} (from {settings.seed.origin}) " if settings.seed.value else ""
        lines.append(f"querywarden: seed {schema}{data}at scale {float(settings.scale.value):g} (from {settings.scale.origin})")
    lines.append(
        f"querywarden: default rate {float(settings.calls_per_minute.value):g} calls/min (from {settings.calls_per_minute.origin}), "
        f"hot from {float(settings.hot_calls_per_minute.value):g} (from {settings.hot_calls_per_minute.origin})"
    )
    return lines


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    # Before -k/-m/--deselect drop any: a deselected test still exists and keeps its baseline.
    _state(config).note_collected(items)


def pytest_collection_finish(session: pytest.Session) -> None:
    state = _state(session.config)
    for arg in session.config.args:
        if "::" in arg:
            module = Path(arg.split("::", 1)[0])
            full = module if module.is_absolute() else session.config.invocation_params.dir / module
            state.partial_modules.add(_relative(full, session.config.rootpath).replace(os.sep, "/"))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Any:
    result = yield  # a failing or skipped test body raises here: nothing is measured
    state = _state(item.config)
    state.called.add(item.nodeid)
    guard = item.stash.get(GUARD_KEY, None)
    if guard is None:
        if item.get_closest_marker(MARKER) is not None:
            pytest.fail(
                f"querywarden: {item.nodeid} is marked hot_path but does not use the querywarden fixture, so "
                "nothing of its path is captured; add the fixture and wrap the code in querywarden.capture(...)",
                pytrace=False,
            )
        return result
    state.guarded.add(item.nodeid)
    outcome = state.check(item, guard)
    state.outcomes.append(outcome.to_plain())
    if outcome.blocking and outcome.message:
        pytest.fail(outcome.message, pytrace=False)
    return result


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
    from .errors import QuerywardenError

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
    if state.failed and session.exitstatus in (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED):
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def _write_reports(config: pytest.Config, outcomes: Sequence[dict[str, Any]]) -> None:
    """The controller alone writes the reports, from every worker's statement results."""
    paths = {fmt: config.getoption(f"querywarden_{fmt}") for fmt in ("json", "html", "markdown")}
    if not any(paths.values()):
        return
    from .cli import write_reports
    from .results import query_from_dict
    from .verdict import RunResult

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
        write(f"stale baseline {line}; delete it with {UPDATE_FLAG}" + (" (fails the run under --querywarden-strict)" if state.settings.strict else ""))
    for line in state.unreadable:
        write(f"unreadable baseline: {line}")
    order = ("fail", "error", "no-baseline", "warn", "improved", "pass", "written", "unchanged")
    counts = ", ".join(f"{tally[status]} {status}" for status in order if tally.get(status))
    blocked = sum(1 for o in state.outcomes if o["blocking"])
    stale = f", {len(state.stale)} stale baselines" if state.stale else ""
    removed = f", {len(state.removed)} stale baselines removed" if state.removed else ""
    verdict = "BLOCKED" if blocked or state.failed else "passed"
    write(f"querywarden: {verdict}: {len(state.outcomes)} guarded tests ({counts}){stale}{removed}")
