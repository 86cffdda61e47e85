"""The plugin's state for one pytest process: resolved settings, the server, the seeded template, the
clones handed to tests and the outcomes of guarded tests (plain data, so xdist workers can send them).

Made at configure time, so everything heavy (psycopg, sqlglot, the engine) is imported only where a
test first uses querywarden: loading the plugin costs a pytest run next to nothing.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from ..environment import OFF_ENV
from ..errors import QuerywardenError

if TYPE_CHECKING:
    import psycopg

    from ..config import Resolved, Setting
    from ..database import Server
    from ..engine import Site
    from ..path import PathSpec
    from ..policy import Policy
    from ..query import CapturedStatement
    from ..sandbox import MeasuringRole
    from ..seeding.seed import Seed
    from .outcome import PathOutcome

DEFAULT_BASELINES = "baselines/tests"
OFF_FLAG = "--querywarden-off"
_REPORT_OPTIONS = ("querywarden_json", "querywarden_html", "querywarden_markdown")
UPDATE_FLAG = "--querywarden-update"
ACCEPT_FLAG = "--querywarden-accept"


@dataclass(frozen=True)
class Clone:
    """A test database the plugin cloned: the template it copies and what baselines record of its seed."""

    template: str
    seed_environment: Mapping[str, str] = field(default_factory=dict)


def relative(path: Path, root: Path) -> str:
    try:
        return os.path.relpath(path, root)
    except ValueError:
        return str(path)


def _server_key(dsn: str) -> tuple[str, str]:
    """Which server a DSN reaches (host and port), whatever database it names."""
    from psycopg.conninfo import conninfo_to_dict

    where = conninfo_to_dict(dsn)
    return str(where.get("host") or ""), str(where.get("port") or "")


class QuerywardenSession:
    """Everything the plugin keeps for one pytest process: settings, server, template, outcomes."""

    def __init__(self, config: pytest.Config, explicit: Mapping[str, Setting]) -> None:
        self.config = config
        self.explicit = explicit
        self._resolved: Resolved | None = None
        self._project_table: bool | None = None  # whether pyproject.toml has [tool.querywarden]
        self._stack = ExitStack()
        self._server: Server | None = None
        self._roles: dict[tuple[str, str], MeasuringRole] = {}
        self._warned = False
        self._own_servers: dict[tuple[str, str], Server] = {}
        self.clones: dict[str, Clone] = {}
        self._shared: str | None = None  # DSN of this process's clone that tests roll back their work on
        self._probe_ms: float | None = None
        self.seed_environment: Mapping[str, str] = {}
        self.outcomes: list[dict[str, Any]] = []
        self.collected: set[str] = set()
        self.called: set[str] = set()
        self.guarded: set[str] = set()
        self.partial_modules: set[str] = set()
        self.stale: list[str] = []
        self.removed: list[str] = []
        self.unreadable: list[str] = []
        self.failed = False
        self.change: str | None = None  # why the guarded paths together break the change budget
        self._base: tuple[str, str] | None = None  # (revision, DSN of this process's clone of its template)
        self._base_seed: Seed | None = None

    # settings and the server, resolved on first use

    @property
    def update(self) -> bool:
        return bool(self.config.getoption("querywarden_update"))

    @property
    def strict(self) -> bool:
        return bool(self.config.getoption("querywarden_strict"))

    @property
    def off(self) -> bool:
        """--querywarden-off or $QUERYWARDEN_OFF: the fixtures work, nothing is measured, judged or written."""
        return bool(self.config.getoption("querywarden_off")) or os.environ.get(OFF_ENV, "").strip().lower() not in ("", "0", "false", "no", "off")

    def configured(self) -> bool:
        """Whether this run is querywarden's business before any test ran: a setting or flag of its own, or
        a [tool.querywarden] table. Otherwise the plugin says nothing and reads no baselines."""
        if self.explicit or self.update or self.strict or self.off or self.config.getoption("querywarden_accept"):
            return True
        if any(self.config.getoption(option) for option in _REPORT_OPTIONS):
            return True
        if self._project_table is None:
            from ..environment import find_pyproject

            pyproject = find_pyproject(self.root)
            self._project_table = False
            if pyproject is not None:
                import tomllib

                try:
                    document = tomllib.loads(pyproject.read_text(encoding="utf-8"))
                except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
                    self._project_table = True  # resolving will say what is wrong with it
                else:
                    tool = document.get("tool")
                    self._project_table = isinstance(tool, dict) and "querywarden" in tool
        return self._project_table

    @property
    def root(self) -> Path:
        return self.config.rootpath

    def resolved(self) -> Resolved:
        """Flag -> environment -> ini (the explicit layers) -> [tool.querywarden] -> default.

        The plugin's baselines are per-test files, another kind than the CLI's per-query ones: they go
        in `tests/` under the directory `baselines` of [tool.querywarden] names (the CLI's files).
        """
        if self._resolved is None:
            from dataclasses import replace

            from ..config import Setting, resolve

            resolved = resolve(
                [self.explicit],
                self.root,
                defaults={"baselines": DEFAULT_BASELINES},
                from_project=("schema", "seed", "scale", "calls_per_minute", "hot_calls_per_minute", "in_place", "embedded"),
            )
            project = resolved.project
            if "baselines" not in self.explicit and "baselines" in project.given:
                shown = f"`baselines` of [tool.querywarden] in {Path(project.source).name}, its tests/"
                under = Setting(str(Path(project.baselines) / "tests"), shown, project.root)
                resolved = replace(resolved, settings={**resolved.settings, "baselines": under})
            self._resolved = resolved
        return self._resolved

    def policy(self) -> Policy:
        from dataclasses import replace

        resolved = self.resolved()
        return replace(resolved.policy, strict=self.strict or resolved.policy.strict, refresh=UPDATE_FLAG, prune=UPDATE_FLAG,
                       accept=f"{UPDATE_FLAG} {ACCEPT_FLAG}={{name}}='why'")

    def accepted(self) -> dict[str, str]:
        """--querywarden-accept TEST=REASON pairs; an empty reason is a usage error."""
        found: dict[str, str] = {}
        for item in self.config.getoption("querywarden_accept") or ():
            text = str(item)
            split = text.find("=", text.rfind("]") + 1)  # a parametrized node id may hold `=` in its brackets
            test, reason = (text[:split].strip(), text[split + 1 :].strip()) if split >= 0 else (text.strip(), "")
            if not test or not reason:
                raise pytest.UsageError(f"querywarden: {ACCEPT_FLAG} {item!r} needs TEST=REASON (the test's node id and why)")
            found[test] = reason
        return found

    @property
    def baselines_dir(self) -> Path:
        return self.resolved().path("baselines")

    def use_server(self, given: object) -> None:
        """Seed and clone on the server a `querywarden_server` fixture gave: a DSN, or a pytest-postgresql
        executor (`postgresql_proc`, `postgresql_noproc`), whose host, port and user say where it is."""
        from ..database import Server
        from ..errors import ConfigError

        if isinstance(given, str):
            dsn = given
        elif all(hasattr(given, name) for name in ("host", "port", "user")):
            from psycopg.conninfo import make_conninfo

            password = getattr(given, "password", None)
            maintenance = getattr(given, "maintenance_dbname", None) or "postgres"
            dsn = make_conninfo(
                host=str(getattr(given, "host")), port=str(getattr(given, "port")), user=str(getattr(given, "user")),
                dbname=str(maintenance), **({"password": str(password)} if password else {}),
            )
        else:
            raise ConfigError(
                f"the querywarden_server fixture gave a {type(given).__name__}; return a DSN or pytest-postgresql's "
                "postgresql_proc / postgresql_noproc fixture"
            )
        if self._server is not None and self._server.dsn != dsn:
            raise ConfigError(
                "the querywarden_server fixture names another server than this session already seeded on; "
                "request querywarden_server before anything else of querywarden's, or set querywarden_dsn instead"
            )
        self._server = Server(dsn)

    def server(self) -> Server:
        """The server to seed and clone on: the configured DSN, else an embedded cluster started now."""
        if self._server is None:
            from ..database import Server

            dsn = self.resolved()["dsn"].value
            if dsn is None:  # each xdist worker starts its own: they share nothing but the baselines
                from ..embedded import EmbeddedCluster

                self.say("no --querywarden-dsn, $QUERYWARDEN_DSN or querywarden_dsn; starting an embedded PostgreSQL cluster")
                embedded = self.resolved()["embedded"]
                dsn = self._stack.enter_context(EmbeddedCluster(
                    embedded=str(embedded.value), embedded_origin=embedded.origin, progress=self.say))
            self._server = Server(str(dsn))
        return self._server

    def seed(self) -> Seed:
        from ..errors import ConfigError

        seed = self.resolved().seed()
        if seed is None:
            raise ConfigError(
                "querywarden_db needs a seed: set querywarden_schema and querywarden_seed (SQL files and/or "
                "module:function) in the pytest ini file or `schema`/`seed` in [tool.querywarden], or capture "
                "your own connections instead"
            )
        return seed

    def base(self) -> tuple[str, str] | None:
        """The base revision's side (--querywarden-base REF): the revision, and this process's clone of
        the template its schema and seed build (made on first use, dropped at the end). Its settings are
        this run's, read in the exported tree: the same flags, its own ini and pyproject.toml."""
        given = self.explicit.get("base")
        if given is None or self._base is not None:
            return self._base
        import uuid
        from dataclasses import replace

        from ..config import resolve
        from ..errors import ConfigError
        from ..revision import exported
        from ..seeding.seed import ensure_template

        revision = self._stack.enter_context(exported(str(given.value), self.root))
        self.say(f"base revision: {revision.short} (the merge base of {given.value} and HEAD)")
        explicit = {key: replace(setting, base=revision.mapped(setting.base)) for key, setting in self.explicit.items() if key != "base"}
        resolved = resolve([explicit], revision.mapped(self.root), defaults={"baselines": DEFAULT_BASELINES},
                           from_project=("schema", "seed", "scale"))
        seed = resolved.seed()
        if seed is None:
            raise ConfigError(f"{given.origin} {given.value}: the base revision {revision.short} sets no schema or seed "
                              "for querywarden, so its database cannot be built; run without it for this change")
        server = self.server()
        template = ensure_template(server, seed, self.say)
        self._base_seed = seed
        name = f"qw_test_{uuid.uuid4().hex[:10]}"
        server.create(name, template, wait_s=5.0)
        self._stack.callback(server.drop, name)
        self.clones[name] = Clone(template, seed.environment())
        self._base = (revision.short, server.dsn_for(name))
        return self._base

    def head_template(self, seed: Seed, progress: Callable[[str], None]) -> str:
        """This tree's seeded template: with a base revision that the tree only adds migrations to, a copy
        of the base's template with those migrations applied to its data (as production applies them)."""
        from ..seeding.seed import ensure_migrated_template, ensure_template

        if self.explicit.get("base") is not None and not self.update:
            self.base()
            if self._base_seed is not None:
                migrated = ensure_migrated_template(self.server(), self._base_seed, seed, progress)
                if migrated is not None:
                    return migrated
        return ensure_template(self.server(), seed, progress)

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
            from ..measure import calibration_probe

            self._probe_ms = calibration_probe(conn)
        return self._probe_ms

    def close(self) -> None:
        """Drop the measuring roles and stop an embedded cluster; a failure here is said, not a traceback
        (the verdicts are in; `querywarden templates --prune` drops what is left)."""
        try:
            self._stack.close()
        except QuerywardenError as exc:
            from ..database import mask_dsn

            reporter = self.config.pluginmanager.get_plugin("terminalreporter")
            if reporter is not None:
                reporter.write_line(f"querywarden: warning: {mask_dsn(str(exc))}")

    # one guarded test

    def site(self, statements: Sequence[CapturedStatement]) -> Site:
        """Reads on each test's clone; its writes on a fresh clone of the template, else on the clone itself;
        all as a restricted role made on the server the statements ran on (unless measuring in place)."""
        from ..engine import Site

        server = self._server
        if server is None and statements and statements[0].database:
            server = self._own_server(statements[0].database)
        in_place = self.resolved().measure.in_place
        if in_place and not self._warned and statements and statements[0].database:
            from ..sandbox import in_place_risk

            self._warned = True
            self.say(f"WARNING: measuring in place (from {self.resolved()['in_place'].origin}): "
                     f"{in_place_risk(statements[0].database)}")
        return Site(
            server,
            {name: clone.template for name, clone in self.clones.items()},
            {name: dict(clone.seed_environment) for name, clone in self.clones.items() if clone.seed_environment},
            writes_in_place=True,
            role=None if server is None or in_place else self.role(server),
        )

    def _own_server(self, dsn: str) -> Server:
        """The server of a test's own connection, administered through its `postgres` database: the
        test's database (a pytest-postgresql or Django one) is gone by the time the role is dropped."""
        from ..database import Server

        key = _server_key(dsn)
        if key not in self._own_servers:
            on_test_database = Server(dsn)
            self._own_servers[key] = (
                Server(on_test_database.dsn_for("postgres")) if on_test_database.exists("postgres") else on_test_database
            )
        return self._own_servers[key]

    def role(self, server: Server) -> MeasuringRole:
        """The restricted role this process measures as on `server`, made on first use, dropped at the end."""
        from ..sandbox import measuring_role

        key = _server_key(server.dsn)
        if key not in self._roles:
            keep_on = "postgres" if server.exists("postgres") else None  # held as the role, seen by a prune
            self._roles[key] = self._stack.enter_context(measuring_role(server, keep_on))
        return self._roles[key]

    def check(self, test: str, spec: PathSpec, statements: Sequence[CapturedStatement]) -> PathOutcome:
        from ..baseline import PathBaselineStore
        from ..database import mask_dsn
        from ..engine import no_probe
        from .outcome import PathOutcome, check_test

        store = PathBaselineStore(self.baselines_dir)
        # The machine probe (~0.5 s) is recorded with new baselines; a check needs it only to confirm a
        # slowdown that only the clock shows, and then the engine probes afresh.
        probe = self.probe if self.update else no_probe
        try:
            base = None if self.update else self.base()
            return check_test(
                spec, statements, store, self.site(statements), self.resolved().measure, self.policy(),
                probe=probe, update=self.update, root=self.root, accepted=self.accepted().get(test), base=base,
            )
        except QuerywardenError as exc:
            text = mask_dsn(str(exc))
            shown = relative(store.path_for(test), self.root)
            return PathOutcome(test, "error", True, (f"ERROR {test}: {text}",), f"querywarden: {text}", shown)

    def shared_clone(self, template: str) -> str:
        """This process's clone of the template, where each test runs in a transaction rolled back
        after it (made on first use, dropped at the end or when a test committed on it)."""
        if self._shared is None:
            import uuid

            server = self.server()
            name = f"qw_test_{uuid.uuid4().hex[:10]}"
            server.create(name, template, wait_s=5.0)
            self._shared = server.dsn_for(name)
            self.clone_made(self._shared, template)
            self._stack.callback(self._drop_shared, self._shared)
        return self._shared

    def tidy_shared_clone(self, tables: Sequence[tuple[str, str]]) -> None:
        """VACUUM the tables a rolled-back test wrote on the shared clone (see plugin.rollback), so the
        next test reads the pages, and only the pages, the seed left."""
        if self._shared is None or not tables:
            return
        from psycopg import sql

        from ..database import connect

        with connect(self._shared, autocommit=True) as conn:
            for schema, name in tables:
                # INDEX_CLEANUP AUTO: a few dead rows leave the index as it is and cost half the time
                # (464 MB seed: ~50 ms against ~105 ms); the buffers later tests read stay the same.
                conn.execute(sql.SQL("VACUUM (INDEX_CLEANUP AUTO) {}").format(sql.Identifier(schema, name)))

    def discard_shared_clone(self) -> None:
        """A test committed on the shared clone: the next test gets a new one, with the seeded data."""
        if self._shared is not None:
            self._drop_shared(self._shared)

    def _drop_shared(self, dsn: str) -> None:
        from ..database import dbname_of

        if self._shared != dsn:
            return
        self._shared = None
        self.clones.pop(dbname_of(dsn), None)
        self.server().drop(dbname_of(dsn))

    def clone_made(self, dsn: str, template: str) -> str:
        from ..database import dbname_of

        name = dbname_of(dsn)
        self.clones[name] = Clone(template, self.seed_environment)
        return name

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
        if self.off or not (self.outcomes or self.guarded or self.configured()):
            return  # not this run's business: an unrelated project's baselines/ is left unread
        try:
            baselines_dir = self.baselines_dir
        except QuerywardenError:
            if self.outcomes:
                raise
            return  # nothing was guarded: a project setting the CLI needs is not this run's business
        from ..baseline import PathBaselineStore

        store = PathBaselineStore(baselines_dir)
        modules = {nodeid.split("::", 1)[0] for nodeid in self.collected} - self.partial_modules
        for path, test in store.tests().items():
            shown = relative(path, self.root)
            if not isinstance(test, str):
                self.unreadable.append(str(test))
                continue
            module = test.split("::", 1)[0]
            gone = not (self.root / module).exists() or (module in modules and test not in self.collected)
            unguarded = test in self.called and test not in self.guarded
            if not (gone or unguarded):
                continue
            why = "its test no longer exists" if gone else "its test ran without capturing through the querywarden fixture"
            if self.update:
                store.remove(path)
                self.removed.append(f"{shown} ({test}: {why})")
            else:
                self.stale.append(f"{shown} ({test}: {why})")
        if self.unreadable or (self.stale and self.strict):
            self.failed = True
