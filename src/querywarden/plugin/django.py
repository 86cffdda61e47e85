"""pytest-django on querywarden's seeded database: Django's test database is the per-process clone.

A project wires it in its conftest.py:

    @pytest.fixture(scope="session")
    def django_db_setup(querywarden_django_db_setup):
        \"\"\"pytest-django's test database is querywarden's seeded one.\"\"\"

Tests then use pytest-django's `db` as usual: each runs inside a transaction rolled back after it
(Django's TestCase atomic), so they see the seeded data and their own rows, and statements captured
with `querywarden.capture(connection)` are measured inside that transaction, on those rows.

A test that really commits (`transactional_db`, `live_server`, `django_db_reset_sequences`,
`@pytest.mark.django_db(transaction=True)` or a `TransactionTestCase`) ends with pytest-django
flushing every table, which would empty the shared clone; after such a test the clone is dropped
and the next test gets a fresh copy of the template (a `CREATE DATABASE … TEMPLATE`, about a second
for a seed of a few hundred MB). It works, but each such test pays that copy: prefer `db`.

Django and pytest-django are imported only when a test session asks for these fixtures, so a project
without Django pays nothing.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from .session import QuerywardenSession

# What pytest-django runs as a TransactionTestCase, whose teardown flushes every table.
_COMMITTING_FIXTURES = frozenset({"transactional_db", "live_server", "django_db_reset_sequences"})
# Connection settings that querywarden's DSN sets; everything else in the DSN goes to OPTIONS.
_SETTINGS = {"dbname": "NAME", "host": "HOST", "port": "PORT", "user": "USER", "password": "PASSWORD"}


@pytest.fixture(scope="session")
def querywarden_django_databases() -> Sequence[str]:
    """The Django database aliases pointed at querywarden's seeded clone (override it to name others)."""
    return ("default",)


@pytest.fixture(scope="session")
def querywarden_django_db_setup(
    request: pytest.FixtureRequest, querywarden_django_databases: Sequence[str]
) -> Iterator[None]:
    """Point pytest-django's test databases at this process's clone of querywarden's seeded template.

    Use it as (or from) `django_db_setup`. Every alias of `querywarden_django_databases` ("default")
    gets the clone's NAME, HOST, PORT, USER and PASSWORD for the session; its settings are restored
    and its connections closed at the end. No test database is created and no migration runs here:
    the template is the schema (a `django:` schema item runs the project's migrations) plus the seed.
    """
    from . import _fail_on, _state
    from ..errors import QuerywardenError

    try:
        blocker = request.getfixturevalue("django_db_blocker")
        request.getfixturevalue("django_test_environment")
    except pytest.FixtureLookupError:
        pytest.fail(
            "querywarden: querywarden_django_db_setup is pytest-django's django_db_setup and needs pytest-django "
            "(pip install pytest-django, and DJANGO_SETTINGS_MODULE in the pytest ini)", pytrace=False,
        )
    state = _state(request.config)
    databases = _DjangoDatabases(state, tuple(querywarden_django_databases))
    with blocker.unblock():
        template = request.getfixturevalue("querywarden_template")
        try:
            databases.point(template)
        except QuerywardenError as exc:
            databases.restore()
            _fail_on(exc)
    watcher = _CommitWatcher(databases, blocker)
    request.config.pluginmanager.register(watcher, f"querywarden-django-{id(watcher)}")
    try:
        yield
    finally:
        request.config.pluginmanager.unregister(watcher)
        with blocker.unblock():
            databases.restore()


class _DjangoDatabases:
    """Django database aliases repointed at the shared clone, with what to put back at the end."""

    def __init__(self, state: QuerywardenSession, aliases: tuple[str, ...]) -> None:
        self.state = state
        self.aliases = aliases
        self.template: str | None = None
        self.dsn: str | None = None  # the clone the aliases point at
        self._saved: dict[str, dict[str, Any]] = {}

    @property
    def active(self) -> bool:
        return self.template is not None

    def _settings(self) -> list[tuple[str, dict[str, Any]]]:
        """Each alias's settings dict (the one its connections in every thread read), checked."""
        connections = _connections()
        found = []
        for alias in self.aliases:
            if alias not in connections.settings:
                known = ", ".join(sorted(connections.settings)) or "none"
                pytest.fail(f"querywarden: no Django database {alias!r} in DATABASES (there are: {known}); "
                            "querywarden_django_databases names the aliases to point at the seeded database", pytrace=False)
            connection = connections[alias]
            if connection.vendor != "postgresql":
                pytest.fail(f"querywarden: Django database {alias!r} is {connection.vendor}, not PostgreSQL "
                            "(ENGINE django.db.backends.postgresql); querywarden measures PostgreSQL", pytrace=False)
            found.append((alias, connection.settings_dict))
        return found

    def point(self, template: str) -> None:
        """Close each alias's connections and give it the shared clone's connection settings."""
        from psycopg.conninfo import conninfo_to_dict

        self.template = template
        dsn = self.dsn = self.state.shared_clone(template)
        params = {key: value for key, value in conninfo_to_dict(dsn).items() if value is not None}
        for alias, settings in self._settings():
            self._saved.setdefault(alias, copy.deepcopy(settings))
            _close(alias)
            options = dict(self._saved[alias].get("OPTIONS") or {})
            options.update({key: value for key, value in params.items() if key not in _SETTINGS})
            settings.update({name: str(params.get(key, "")) for key, name in _SETTINGS.items()})
            settings["OPTIONS"] = options

    def follow(self, committed: bool) -> None:
        """After a test: when it committed (and pytest-django flushed the tables), a fresh clone of the seed
        for the next test; when another fixture replaced the shared clone (querywarden_db saw a commit),
        Django follows it."""
        if self.template is None:
            return
        if committed:
            for alias in self.aliases:
                _close(alias)
            self.state.discard_shared_clone()
        if self.state.shared_clone(self.template) != self.dsn:
            self.point(self.template)

    def written(self) -> list[tuple[str, str]]:
        """The tables this thread's open test transactions wrote, asked before pytest-django rolls them back."""
        from .rollback import written_tables

        found: set[tuple[str, str]] = set()
        for alias in self.aliases:
            found.update(written_tables(_connections()[alias].connection))
        return sorted(found)

    def restore(self) -> None:
        connections = _connections()
        self.template = self.dsn = None
        for alias, saved in self._saved.items():
            _close(alias)
            settings = connections[alias].settings_dict
            settings.clear()
            settings.update(saved)
        self._saved.clear()


def _connections() -> Any:
    """Django's connection handler, imported only when a session points Django at the seeded clone."""
    from django.db import connections  # type: ignore[import-untyped]

    return connections


def _close(alias: str) -> None:
    """Close this thread's connection of `alias` (Django keeps one per thread; tests use this one)."""
    _connections()[alias].close()


def commits(item: pytest.Item) -> bool:
    """Whether pytest-django runs `item` as a TransactionTestCase: it commits, and its teardown flushes."""
    if _COMMITTING_FIXTURES & set(getattr(item, "fixturenames", ())):
        return True
    marker = item.get_closest_marker("django_db")
    if marker is not None:
        try:
            from pytest_django.fixtures import validate_django_db

            transaction, reset_sequences = validate_django_db(marker)[:2]
            if transaction or reset_sequences:
                return True
        except (ImportError, AttributeError, TypeError):  # another pytest-django: read the marker itself
            if marker.kwargs.get("transaction") or marker.kwargs.get("reset_sequences") or (marker.args and marker.args[0]):
                return True
    cls = getattr(item, "cls", None)
    if isinstance(cls, type):
        from django.test import TestCase, TransactionTestCase  # type: ignore[import-untyped]

        return issubclass(cls, TransactionTestCase) and not issubclass(cls, TestCase)
    return False


class _CommitWatcher:
    """Registered for the session while Django points at the shared clone: after a test that committed
    (and had its tables flushed by pytest-django), the next test gets a fresh clone; after a test whose
    querywarden_db or querywarden_session committed, Django moves to the clone that replaced it."""

    def __init__(self, databases: _DjangoDatabases, blocker: Any) -> None:
        self.databases = databases
        self.blocker = blocker

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_teardown(self, item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
        committed = commits(item)
        written = [] if committed or not self.databases.active else self.databases.written()
        try:
            yield
        finally:
            if self.databases.active:  # not after the session's own teardown restored the settings
                from . import _fail_on
                from ..errors import QuerywardenError

                with self.blocker.unblock():
                    try:
                        self.databases.follow(committed)
                        self.databases.state.tidy_shared_clone(written)  # the test's rolled-back rows
                    except QuerywardenError as exc:
                        _fail_on(exc)
