"""Fixtures in the shapes ORM users already write their tests in, on querywarden's seeded database.

SQLAlchemy and Flask-SQLAlchemy take a URL; SQLAlchemy's own testing recipe joins a Session into an
external transaction that is rolled back after the test. Each is imported only when a test asks
for it, so projects without SQLAlchemy pay nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine
    from sqlalchemy.orm import Session


@pytest.fixture
def querywarden_db_url(querywarden_db_dsn: str) -> str:
    """SQLAlchemy URL (`postgresql+psycopg://…`) of this test's own fresh clone of the seeded template,
    for code that builds its own engine (Flask-SQLAlchemy's SQLALCHEMY_DATABASE_URI) and may commit."""
    from ..database import sqlalchemy_url

    return sqlalchemy_url(querywarden_db_dsn)


@pytest.fixture
def querywarden_engine(querywarden_db_url: str) -> Iterator[Engine]:
    """A SQLAlchemy engine on this test's own fresh clone (commits are the test's to make)."""
    from sqlalchemy import create_engine
    from sqlalchemy.pool import NullPool

    engine = create_engine(querywarden_db_url, poolclass=NullPool)
    try:
        yield engine
    finally:
        engine.dispose()


@pytest.fixture
def querywarden_session(request: pytest.FixtureRequest, querywarden_template: str) -> Iterator[Session]:
    """A SQLAlchemy Session on the seeded database, joined into a transaction rolled back after the test.

    `session.commit()` releases a savepoint (join_transaction_mode="create_savepoint"), so the test
    sees its own writes and they are measured; no clone is made per test.
    """
    from sqlalchemy import create_engine
    from sqlalchemy.orm import Session
    from sqlalchemy.pool import NullPool

    from ..database import sqlalchemy_url
    from ..errors import QuerywardenError
    from . import _fail_on, _state
    from .rollback import still_open, transaction_started, written_tables

    state = _state(request.config)
    try:
        engine = create_engine(sqlalchemy_url(state.shared_clone(querywarden_template)), poolclass=NullPool)
    except QuerywardenError as exc:
        _fail_on(exc)
    connection = engine.connect()
    outer = connection.begin()
    driver: Any = connection.connection.driver_connection
    started = transaction_started(driver)
    session = Session(bind=connection, join_transaction_mode="create_savepoint")
    try:
        yield session
    finally:
        session.close()
        clean = still_open(driver, started)
        written = written_tables(driver) if clean else []
        if outer.is_active:
            outer.rollback()
        connection.close()
        engine.dispose()
        if not clean:
            state.discard_shared_clone()
        try:
            state.tidy_shared_clone(written)
        except QuerywardenError as exc:
            _fail_on(exc)
