"""Stand-ins for the plugin's fixtures that measure nothing: the baseline of benchmarks/plugin_overhead.py.

Loaded with `-p no:querywarden -p plugin_off`. The suite gets what a team's own fixtures give it
without querywarden: one copy of the seeded database for the whole run (made once, like
pytest-django's test database), each test in a transaction rolled back after it, a SQLAlchemy
Session joined into that transaction. `querywarden.capture` still records statements (the example's
tests assert on them; it costs microseconds), but nothing is measured, compared or written. The
template and server come from $QW_BENCH_TEMPLATE and $QW_BENCH_DSN.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import pytest
from sqlalchemy import create_engine
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool

from querywarden.capture import Capture, capture
from querywarden.database import Server, sqlalchemy_url
from querywarden.plugin.rollback import RolledBackConnection, begin

_INI_KEYS = (
    "querywarden_dsn",
    "querywarden_baselines",
    "querywarden_schema",
    "querywarden_seed",
    "querywarden_scale",
    "querywarden_calls_per_minute",
    "querywarden_hot_calls_per_minute",
)


def pytest_addoption(parser: pytest.Parser) -> None:
    for key in _INI_KEYS:
        parser.addini(key, "ignored without the querywarden plugin", default=None)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "hot_path(calls_per_minute, budget_ms=None): ignored without the plugin")


class NotMeasured:
    def __init__(self) -> None:
        self.statements = Capture()

    @contextmanager
    def capture(self, target: object) -> Iterator[Capture]:
        with capture(target, self.statements) as block:
            yield block


@pytest.fixture
def querywarden() -> NotMeasured:
    return NotMeasured()


@pytest.fixture(scope="session")
def suite_database() -> Iterator[str]:
    with Server(os.environ["QW_BENCH_DSN"]).clone(os.environ["QW_BENCH_TEMPLATE"], prefix="qw_test") as dsn:
        yield dsn


@pytest.fixture
def querywarden_db(suite_database: str) -> Iterator[psycopg.Connection[Any]]:
    """Commits keep to a savepoint, as in Django's TestCase: the app's own commit() is rolled back too."""
    with RolledBackConnection.connect(suite_database) as conn:
        begin(conn)
        yield conn
        psycopg.Connection.rollback(conn)


@pytest.fixture
def querywarden_session(suite_database: str) -> Iterator[Session]:
    engine = create_engine(sqlalchemy_url(suite_database), poolclass=NullPool)
    with engine.connect() as connection:
        outer = connection.begin()
        with Session(bind=connection, join_transaction_mode="create_savepoint") as session:
            yield session
        outer.rollback()
    engine.dispose()
