"""Capturing async application code: psycopg's AsyncConnection and SQLAlchemy's asyncio extension
(AsyncEngine, AsyncConnection, AsyncSession), with the application's own calling line; real PostgreSQL.

The capture-level tests drive their coroutines with `asyncio.run`; the plugin tests run real inner
pytest sessions with pytest-asyncio on, measured and recorded through the plugin.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import greenlet  # noqa: F401  (SQLAlchemy's asyncio extension needs it; imported once, see below)
import psycopg
import pytest
import pytest_asyncio  # noqa: F401  (imported once here: pytester's inner sessions drop what they import)
import sqlalchemy.ext.asyncio  # noqa: F401
from sqlalchemy import ForeignKey, column, insert, select, table, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_scoped_session, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship, selectinload
from sqlalchemy.pool import NullPool

import querywarden.engine  # noqa: F401
import querywarden.hosting  # noqa: F401
import querywarden.plugin.outcome  # noqa: F401
from querywarden.capture import Capture, capture
from querywarden.database import Server, dbname_of, sqlalchemy_url
from querywarden.engine import no_probe
from querywarden.hosting import InTransaction
from querywarden.observation import Observation, Unmeasured
from querywarden.path import PathSpec
from querywarden.policy import MeasureSettings

from test_plugin import INNER_ADDOPTS

pytest_plugins = ["pytester"]


@pytest.fixture(scope="module")
def shop_dsn(server: Server) -> Iterator[str]:
    """A small database shared by this module's capture tests (they only read it, or roll back)."""
    name = f"qw_test_capture_async_{uuid.uuid4().hex[:8]}"
    server.create(name)
    dsn = server.dsn_for(name)
    try:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("CREATE TABLE owners (id integer PRIMARY KEY, name text NOT NULL)")
            conn.execute("CREATE TABLE items (id integer PRIMARY KEY, owner_id integer NOT NULL REFERENCES owners (id), title text)")
            conn.execute("INSERT INTO owners SELECT g, 'owner ' || g FROM generate_series(1, 5) AS g")
            conn.execute("INSERT INTO items SELECT g, 1 + g % 5, 'item ' || g FROM generate_series(1, 20) AS g")
        yield dsn
    finally:
        server.drop(name)


def line_of(text: str, path: Path | None = None) -> int:
    """The line of a file (this one by default) that contains `text`."""
    for number, line in enumerate((path or Path(__file__)).read_text().splitlines(), start=1):
        if text in line and "line_of(" not in line:
            return number
    raise AssertionError(text)


def load_module(path: Path, source: str) -> ModuleType:
    path.write_text(textwrap.dedent(source))
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def rows(captured: Capture) -> list[tuple[str, Any, int, str]]:
    return [(s.sql, s.params, s.executions, s.via) for s in captured]


def in_transaction() -> Capture:
    """A test-level capture with the plugin's `before`: statements whose rows only their own open
    transaction sees are measured there, just before they run."""
    settings = MeasureSettings(warmup=0, min_samples=3, max_samples=5)
    return Capture(before=InTransaction(settings, PathSpec("test", 60.0), no_probe))


def scans_of(observation: object, relation: str) -> list[float]:
    assert isinstance(observation, Observation), observation
    found: list[float] = []
    todo = [observation.plan]
    while todo:
        node = todo.pop()
        if node.relation == relation:
            found.append(node.actual_rows)
        todo.extend(node.children)
    return found


# --- psycopg AsyncConnection ---------------------------------------------------------------------------


def test_psycopg_async_execute_executemany_stream_and_server_side_cursors(shop_dsn: str) -> None:
    async def run() -> tuple[Capture, list[Any], str]:
        async with await psycopg.AsyncConnection.connect(shop_dsn) as conn:
            with capture(conn) as captured:
                name = await (await conn.execute("SELECT name FROM owners WHERE id = %s", (1,))).fetchone()  # aconn.execute
                async with conn.cursor() as cur:
                    await cur.executemany("SELECT title FROM items WHERE id = %(id)s", [{"id": 1}, {"id": 2}, {"id": 3}])
                    streamed = [row async for row in cur.stream("SELECT id FROM items WHERE owner_id = %s", [2])]
                async with conn.cursor(name="pages") as named:  # server-side cursor
                    await named.execute("SELECT id, title FROM items WHERE id > %s", (10,))
                    paged = await named.fetchall()
            assert conn.cursor_factory is psycopg.AsyncCursor
            assert conn.server_cursor_factory is psycopg.AsyncServerCursor
            assert all(s.connection is not None and s.connection() is conn for s in captured)
            return captured, [name, len(streamed), len(paged)], conn.info.dsn

    captured, seen, dsn = asyncio.run(run())
    assert seen == [("owner 1",), 4, 10]
    assert rows(captured) == [
        ("SELECT name FROM owners WHERE id = %s", (1,), 1, "psycopg async"),
        ("SELECT title FROM items WHERE id = %(id)s", {"id": 1}, 3, "psycopg async"),
        ("SELECT id FROM items WHERE owner_id = %s", (2,), 1, "psycopg async"),
        ("SELECT id, title FROM items WHERE id > %s", (10,), 1, "psycopg async server-side cursor"),
    ]
    first = captured.statements[0]
    assert first.source is not None and first.source.path == __file__
    assert first.source.line == line_of("# aconn.execute")
    assert first.function == "run"
    assert dbname_of(first.database) == dbname_of(dsn)


def test_psycopg_async_cursor_classes_keep_their_binding_and_are_restored(shop_dsn: str) -> None:
    async def run() -> list[tuple[str, str]]:
        async with await psycopg.AsyncConnection.connect(shop_dsn) as conn:
            recorded = []
            for factory, sql in ((psycopg.AsyncClientCursor, "SELECT %s::int"), (psycopg.AsyncRawCursor, "SELECT $1::int")):
                conn.cursor_factory = factory
                with pytest.raises(RuntimeError):
                    with capture(conn) as captured:
                        assert conn.cursor_factory is not factory and issubclass(conn.cursor_factory, factory)
                        await conn.execute(sql, (1,))
                        raise RuntimeError("the app failed")
                assert conn.cursor_factory is factory
                recorded += [(s.sql, s.binding) for s in captured]
            await conn.execute("SELECT 2")  # after the blocks: not recorded anywhere
            assert len(captured) == 1
            return recorded

    assert asyncio.run(run()) == [("SELECT %s::int", "client"), ("SELECT $1::int", "raw")]


def test_psycopg_async_failed_statements_are_not_recorded_and_async_with_works(shop_dsn: str) -> None:
    async def run() -> Capture:
        async with await psycopg.AsyncConnection.connect(shop_dsn) as conn:
            async with capture(conn) as captured:
                await conn.execute("SELECT count(*) FROM items")
                with pytest.raises(psycopg.errors.UndefinedTable):
                    await conn.execute("SELECT * FROM no_such_table")
            await conn.rollback()
            return captured

    assert rows(asyncio.run(run())) == [("SELECT count(*) FROM items", None, 1, "psycopg async")]


def test_nested_and_repeated_async_psycopg_captures_share_one_hook(shop_dsn: str) -> None:
    async def run() -> tuple[Capture, Capture, Capture, Capture]:
        test_level = Capture()
        async with await psycopg.AsyncConnection.connect(shop_dsn) as conn:
            with capture(conn, test_level) as outer:
                hooked = conn.cursor_factory
                await conn.execute("SELECT 1")
                with capture(conn, test_level) as inner:
                    assert conn.cursor_factory is hooked  # one hook, not a recording class of a recording class
                    await conn.execute("SELECT 2")
                await conn.execute("SELECT 3")
            with capture(conn, test_level) as again:
                await conn.execute("SELECT 4")
            assert conn.cursor_factory is psycopg.AsyncCursor
        return outer, inner, again, test_level

    outer, inner, again, test_level = asyncio.run(run())
    assert [s.sql for s in outer] == ["SELECT 1", "SELECT 2", "SELECT 3"]
    assert [s.sql for s in inner] == ["SELECT 2"]
    assert [s.sql for s in again] == ["SELECT 4"]
    assert [s.sql for s in test_level] == ["SELECT 1", "SELECT 2", "SELECT 3", "SELECT 4"]


def test_the_async_calling_line_is_the_application_s(shop_dsn: str, tmp_path: Path) -> None:
    app = load_module(
        tmp_path / "async_shop_app.py",
        """
        async def owner_name(conn, owner_id):
            cur = await conn.execute("SELECT name FROM owners WHERE id = %s", (owner_id,))
            return await cur.fetchone()


        async def page(conn):
            return [await owner_name(conn, i) for i in (1, 2)]
        """,
    )

    async def run() -> Capture:
        async with await psycopg.AsyncConnection.connect(shop_dsn) as conn:
            with capture(conn) as captured:
                assert await app.page(conn) == [("owner 1",), ("owner 2",)]
            return captured

    captured = asyncio.run(run())
    assert [(Path(s.source.path).name, s.source.line, s.function) for s in captured if s.source] == [
        ("async_shop_app.py", 3, "owner_name"),
        ("async_shop_app.py", 3, "owner_name"),
    ]


def test_an_async_transaction_s_own_rows_are_measured_in_it_and_left_as_they_were(shop_dsn: str) -> None:
    """The plugin's `before` on an AsyncConnection: measured just before the statement runs, inside the
    running event loop, through a synchronous twin over the same libpq connection."""

    async def run() -> tuple[Capture, int, int, list[str]]:
        notices: list[str] = []
        async with await psycopg.AsyncConnection.connect(shop_dsn) as conn:
            conn.add_notice_handler(lambda diagnostic: notices.append(str(diagnostic.message_primary)))
            await conn.execute("INSERT INTO items SELECT 1000 + g, 3, 'new' FROM generate_series(1, 300) AS g")
            with capture(conn, test := in_transaction()):
                seen = await (await conn.execute("SELECT id FROM items WHERE owner_id = %s", (3,))).fetchall()
            after = await (await conn.execute("SELECT count(*) FROM items")).fetchone()
            await conn.execute("DO $$ BEGIN RAISE NOTICE 'still heard'; END $$")  # the app's handler survives the twin
            await conn.rollback()
            assert after is not None
            return test, len(seen), after[0], notices

    test, seen, after, notices = asyncio.run(run())
    assert (seen, after) == (4 + 300, 20 + 300)  # the measuring left the test's transaction as it was
    assert notices == ["still heard"]
    (statement,) = test.statements
    assert isinstance(statement.prior, Observation)
    assert statement.prior.environment["measured_in"] == "test transaction"
    assert scans_of(statement.prior, "items") == [304.0]


# --- SQLAlchemy asyncio ------------------------------------------------------------------------------------


def async_engine(dsn: str) -> AsyncEngine:
    # `postgresql+psycopg://` names the psycopg dialect; create_async_engine takes its asyncio variant.
    return create_async_engine(sqlalchemy_url(dsn), poolclass=NullPool)


SQLALCHEMY_APP = """
    from sqlalchemy import text


    async def owner_name(conn, owner_id):
        result = await conn.execute(text("SELECT name FROM owners WHERE id = :id"), {"id": owner_id})
        return result.scalar_one()


    async def titles(conn, owner_id):
        result = await conn.execute(text("SELECT title FROM items WHERE owner_id = :owner"), {"owner": owner_id})
        return result.scalars().all()
"""


def test_sqlalchemy_async_engine_and_connection_record_the_application_s_line(shop_dsn: str, tmp_path: Path) -> None:
    app = load_module(tmp_path / "async_sa_app.py", SQLALCHEMY_APP)
    items = table("items", column("id"), column("owner_id"), column("title"))

    async def run() -> tuple[Capture, Capture, list[object]]:
        engine = async_engine(shop_dsn)
        try:
            with capture(engine) as on_engine:
                async with engine.connect() as conn:
                    assert await app.owner_name(conn, 3) == "owner 3"
                    assert len(await app.titles(conn, 2)) == 4
                    await conn.execute(insert(items), [{"id": 100 + i, "owner_id": 1, "title": "x"} for i in range(3)])
                    drivers = [s.connection() if s.connection else None for s in on_engine]
                    await conn.rollback()
            async with engine.connect() as conn:
                async with capture(conn) as on_connection:
                    await conn.execute(select(items.c.title).where(items.c.id == 1))  # test's own line
            assert not engine.sync_engine.dispatch.after_cursor_execute
            assert not engine.sync_engine.dispatch.before_cursor_execute
        finally:
            await engine.dispose()
        return on_engine, on_connection, drivers

    on_engine, on_connection, drivers = asyncio.run(run())
    assert [(s.sql, s.params, s.via) for s in on_engine][:2] == [
        ("SELECT name FROM owners WHERE id = %(id)s", {"id": 3}, "sqlalchemy async"),
        ("SELECT title FROM items WHERE owner_id = %(owner)s", {"owner": 2}, "sqlalchemy async"),
    ]
    assert on_engine.statements[2].sql.startswith("INSERT INTO items")
    app_path = str(tmp_path / "async_sa_app.py")
    assert [(s.source.path, s.source.line, s.function) for s in on_engine.statements[:2] if s.source] == [
        (app_path, line_of('text("SELECT name FROM owners', tmp_path / "async_sa_app.py"), "owner_name"),
        (app_path, line_of('text("SELECT title FROM items', tmp_path / "async_sa_app.py"), "titles"),
    ]
    # never SQLAlchemy's greenlet machinery, querywarden or a shim
    assert all(s.source is not None and "site-packages" not in s.source.path for s in on_engine)
    assert all(isinstance(driver, psycopg.AsyncConnection) for driver in drivers)
    assert all(dbname_of(s.database) == dbname_of(shop_dsn) for s in on_engine)
    (statement,) = on_connection.statements
    assert statement.source is not None and statement.source.path == __file__
    assert statement.source.line == line_of("# test's own line")


class Base(DeclarativeBase):
    pass


class Owner(Base):
    __tablename__ = "owners"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str]


class Item(Base):
    __tablename__ = "items"
    id: Mapped[int] = mapped_column(primary_key=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("owners.id"))
    title: Mapped[str]
    owner: Mapped[Owner] = relationship()


def test_sqlalchemy_async_session_and_scoped_session_record_orm_queries(shop_dsn: str) -> None:
    async def run() -> tuple[Capture, Capture, Capture]:
        engine = async_engine(shop_dsn)
        try:
            async with AsyncSession(engine) as session:
                with capture(session) as orm:
                    found = (await session.scalars(select(Item).where(Item.id <= 10).options(selectinload(Item.owner)))).all()
                    assert {item.owner.name for item in found} == {f"owner {n}" for n in range(1, 6)}
                    # a nested capture of the same session: its statement reaches both blocks, once each
                    with capture(session) as nested:
                        await session.get(Owner, 1)  # in the identity map: no statement
                        await session.scalar(select(Owner.name).where(Owner.id == 2))  # nested ORM line
            scoped = async_scoped_session(async_sessionmaker(engine), scopefunc=asyncio.current_task)
            with capture(scoped) as through_scope:
                assert await scoped.scalar(select(Item.title).where(Item.id == 7)) == "item 7"
            await scoped.remove()
        finally:
            await engine.dispose()
        return orm, nested, through_scope

    orm, nested, through_scope = asyncio.run(run())
    assert len(orm) == 3  # the items, their owners (selectin), the nested block's owner name
    assert orm.statements[0].sql.startswith("SELECT items.id, items.owner_id, items.title")
    assert "FROM owners" in orm.statements[1].sql
    assert [s.sql for s in nested] == [orm.statements[2].sql]
    assert nested.statements[0].source is not None and nested.statements[0].source.line == line_of("# nested ORM line")
    assert all(s.source is not None and s.source.path == __file__ and s.via == "sqlalchemy async" for s in orm)
    assert [s.params for s in through_scope] == [{"id_1": 7}]


def test_nested_and_repeated_async_sqlalchemy_captures_share_one_hook(shop_dsn: str) -> None:
    async def run() -> tuple[list[list[str]], list[int]]:
        engine = async_engine(shop_dsn)
        test_level = Capture()
        listeners: list[int] = []
        try:
            async with engine.connect() as conn:
                with capture(engine, test_level) as outer:
                    await conn.execute(text("SELECT 1"))
                    with capture(engine.sync_engine, test_level) as inner:  # the sync twin is the same target
                        listeners.append(len(engine.sync_engine.dispatch.after_cursor_execute))
                        await conn.execute(text("SELECT 2"))
                    await conn.execute(text("SELECT 3"))
                with capture(engine, test_level) as again:
                    await conn.execute(text("SELECT 4"))
                listeners.append(len(engine.sync_engine.dispatch.after_cursor_execute))
        finally:
            await engine.dispose()
        return [[s.sql for s in c] for c in (outer, inner, again, test_level)], listeners

    seen, listeners = asyncio.run(run())
    assert seen == [["SELECT 1", "SELECT 2", "SELECT 3"], ["SELECT 2"], ["SELECT 4"], ["SELECT 1", "SELECT 2", "SELECT 3", "SELECT 4"]]
    assert listeners == [1, 0]


def test_sqlalchemy_async_transaction_s_own_rows_are_measured_in_it(shop_dsn: str) -> None:
    async def run() -> tuple[Capture, int]:
        engine = async_engine(shop_dsn)
        try:
            async with engine.connect() as conn:
                await conn.execute(text("INSERT INTO items SELECT 2000 + g, 4, 'new' FROM generate_series(1, 200) AS g"))
                with capture(conn, test := in_transaction()):
                    counted = (await conn.execute(text("SELECT count(*) FROM items WHERE owner_id = :o"), {"o": 4})).scalar_one()
                await conn.rollback()
        finally:
            await engine.dispose()
        return test, counted

    test, counted = asyncio.run(run())
    assert counted == 4 + 200
    (statement,) = test.statements
    assert isinstance(statement.prior, Observation)
    assert statement.prior.environment["measured_in"] == "test transaction"
    assert scans_of(statement.prior, "items") == [204.0]


def test_targets_that_are_not_ready_or_not_supported_say_so(shop_dsn: str) -> None:
    async def run() -> None:
        engine = async_engine(shop_dsn)
        try:
            with pytest.raises(TypeError, match="AsyncConnection: it is not started yet"):
                with capture(engine.connect()):
                    pass
        finally:
            await engine.dispose()

    asyncio.run(run())
    with pytest.raises(TypeError, match="in async code: a psycopg AsyncConnection"):
        with capture(object()):
            pass


def test_a_pipeline_inside_an_open_transaction_is_refused_not_broken(shop_dsn: str) -> None:
    async def run() -> tuple[Capture, Any]:
        async with await psycopg.AsyncConnection.connect(shop_dsn) as conn:
            await conn.execute("INSERT INTO items VALUES (3000, 1, 'new')")
            with capture(conn, test := in_transaction()):
                async with conn.pipeline():
                    cur = await conn.execute("SELECT count(*) FROM items")
                counted = await cur.fetchone()
            await conn.rollback()
        return test, counted

    test, counted = asyncio.run(run())
    assert counted == (21,)  # the application's statement ran as it would have
    (statement,) = test.statements
    assert isinstance(statement.prior, Unmeasured)
    assert "pipeline mode" in statement.prior.message


def test_a_sync_pipeline_inside_an_open_transaction_is_refused_too(shop_dsn: str) -> None:
    with psycopg.connect(shop_dsn) as conn:
        conn.execute("INSERT INTO items VALUES (3000, 1, 'new')")
        with capture(conn, test := in_transaction()):
            with conn.pipeline():
                cur = conn.execute("SELECT count(*) FROM items")
            assert cur.fetchone() == (21,)
        conn.rollback()
    (statement,) = test.statements
    assert isinstance(statement.prior, Unmeasured) and "pipeline mode" in statement.prior.message


# --- through the plugin: async tests in real inner pytest sessions (pytest-asyncio on) ----------------------

SCHEMA = """\
CREATE TABLE notes (id serial PRIMARY KEY, owner integer NOT NULL, body text NOT NULL);
CREATE INDEX notes_owner_idx ON notes (owner);
"""
DATA = "INSERT INTO notes (owner, body) SELECT g % 500, 'note ' || g FROM generate_series(1, 20000) AS g;\n"

NOTES_APP = """\
from sqlalchemy import text


async def notes_of(conn, owner):
    cur = await conn.execute("SELECT id, body FROM notes WHERE owner = %s", (owner,))
    return await cur.fetchall()


async def count_of(conn, owner):
    cur = await conn.execute("SELECT count(*) FROM notes WHERE owner = %s", (owner,))
    return (await cur.fetchone())[0]


async def bodies_with_sqlalchemy(conn, owner):
    result = await conn.execute(text("SELECT body FROM notes WHERE owner = :owner"), {"owner": owner})
    return result.scalars().all()


async def count_in_a_pipeline(conn, owner):
    async with conn.pipeline():
        cur = await conn.execute("SELECT count(*) FROM notes WHERE owner = %s", (owner,))  # in a pipeline
    return (await cur.fetchone())[0]
"""


def _project(root: Path, dsn: str, tests: str) -> None:
    (root / "tests").mkdir()
    (root / "schema.sql").write_text(SCHEMA)
    (root / "data.sql").write_text(DATA)
    (root / "notes_app.py").write_text(NOTES_APP)
    (root / "tests" / "test_paths.py").write_text(textwrap.dedent(tests))
    addopts = INNER_ADDOPTS.replace("-p no:asyncio", "").strip()
    assert "asyncio" not in addopts
    (root / "pytest.ini").write_text(textwrap.dedent(f"""\
        [pytest]
        addopts = {addopts}
        pythonpath = .
        asyncio_mode = auto
        asyncio_default_fixture_loop_scope = function
        querywarden_dsn = {dsn}
        querywarden_schema = schema.sql
        querywarden_seed = data.sql
        querywarden_baselines = baselines
        """))


def _baseline(root: Path, test: str) -> dict[str, Any]:
    return dict(json.loads((root / "baselines" / f"tests_test_paths.py_{test}.json").read_text()))


def _statements(root: Path, test: str) -> list[dict[str, Any]]:
    return list(_baseline(root, test)["statements"])


def _measured_in(root: Path, test: str) -> object:
    return _baseline(root, test)["environment"].get("measured_in")


def _scans(node: dict[str, Any], relation: str = "notes") -> list[float]:
    found = [float(node["actual_rows"])] if node.get("relation") == relation else []
    for child in node.get("children", ()):
        found += _scans(child, relation)
    return found


def _sources(report: Path) -> dict[str, tuple[str, int]]:
    """Per statement of the JSON report: the calling line, as a path relative to the project and a line."""
    document = json.loads(report.read_text())
    found: dict[str, tuple[str, int]] = {}
    for query in document["queries"]:
        source = query["source"]
        assert source is not None, query
        found[query["name"]] = (Path(source["path"]).name, int(source["line"]))
    return found


def _app_line(text: str) -> int:
    return next(n for n, line in enumerate(NOTES_APP.splitlines(), start=1) if text in line)


ASYNC_TESTS = """\
    import psycopg
    import pytest
    from sqlalchemy.ext.asyncio import create_async_engine
    from sqlalchemy.pool import NullPool

    import notes_app

    MINE = 9999  # no seeded note has it


    @pytest.fixture
    async def aconn(querywarden_db_dsn):
        conn = await psycopg.AsyncConnection.connect(querywarden_db_dsn)
        yield conn
        await conn.close()


    @pytest.fixture
    async def engine(querywarden_db_url):
        engine = create_async_engine(querywarden_db_url, poolclass=NullPool)
        yield engine
        await engine.dispose()


    @pytest.mark.hot_path(calls_per_minute=3000)
    async def test_psycopg_async_reads_its_own_rows(querywarden, aconn):
        await aconn.execute(
            "INSERT INTO notes (owner, body) SELECT %s, 'mine ' || g FROM generate_series(1, 300) AS g", (MINE,))
        with querywarden.capture(aconn):
            rows = await notes_app.notes_of(aconn, MINE)  # uncommitted: only this transaction sees them
        assert len(rows) == 300
        await aconn.rollback()


    async def test_psycopg_async_committed_data(querywarden, aconn):
        await aconn.set_autocommit(True)
        async with querywarden.capture(aconn):
            assert await notes_app.count_of(aconn, 7) == 40


    @pytest.mark.hot_path(calls_per_minute=3000)
    async def test_sqlalchemy_async_reads_its_own_rows(querywarden, engine):
        from sqlalchemy import text

        async with engine.connect() as conn:
            await conn.execute(text("INSERT INTO notes (owner, body) SELECT 8888, 'orm ' || g FROM generate_series(1, 250) AS g"))
            with querywarden.capture(engine):
                bodies = await notes_app.bodies_with_sqlalchemy(conn, 8888)
                seeded = await notes_app.bodies_with_sqlalchemy(conn, 11)
            assert (len(bodies), len(seeded)) == (250, 40)
            await conn.rollback()
    """


def test_async_tests_are_captured_measured_and_recorded_through_the_plugin(pytester: pytest.Pytester, pg_dsn: str) -> None:
    _project(pytester.path, pg_dsn, ASYNC_TESTS)
    result = pytester.runpytest("--querywarden-update", "-p", "no:randomly")
    result.assert_outcomes(passed=3)

    (read,) = _statements(pytester.path, "test_psycopg_async_reads_its_own_rows")
    assert read["sql"] == "SELECT id, body FROM notes WHERE owner = %s"
    assert _scans(read["plan"]) == [300.0]  # the rows only the test's open transaction saw
    assert _measured_in(pytester.path, "test_psycopg_async_reads_its_own_rows") == "test transaction"
    (count,) = _statements(pytester.path, "test_psycopg_async_committed_data")
    assert _scans(count["plan"]) == [40.0]
    assert _measured_in(pytester.path, "test_psycopg_async_committed_data") is None  # committed data: on a clone
    (bodies,) = _statements(pytester.path, "test_sqlalchemy_async_reads_its_own_rows")
    assert bodies["sql"] == "SELECT body FROM notes WHERE owner = %(owner)s"
    # one statement, run twice: measured once, on the first run's rows (the test's own 250)
    assert (bodies["statement_count"], _scans(bodies["plan"])) == (2, [250.0])
    assert _measured_in(pytester.path, "test_sqlalchemy_async_reads_its_own_rows") == "test transaction"

    # Checked again against the baselines: the same rows, so they pass; the report names the app's lines.
    report = pytester.path / "results.json"
    result = pytester.runpytest("-p", "no:randomly", f"--querywarden-json={report}")
    result.assert_outcomes(passed=3)
    sources = _sources(report)
    notes_of = ("notes_app.py", _app_line('"SELECT id, body FROM notes'))
    count_of = ("notes_app.py", _app_line('"SELECT count(*) FROM notes'))
    bodies = ("notes_app.py", _app_line('text("SELECT body FROM notes'))
    assert sorted(sources.values()) == sorted([notes_of, count_of, bodies]), sources


PIPELINE_TEST = """\
    import psycopg

    import notes_app


    async def test_pipeline_in_an_open_transaction(querywarden, querywarden_db_dsn):
        async with await psycopg.AsyncConnection.connect(querywarden_db_dsn) as aconn:
            await aconn.execute("INSERT INTO notes (owner, body) VALUES (7, 'mine')")
            with querywarden.capture(aconn):
                assert await notes_app.count_in_a_pipeline(aconn, 7) == 41
            await aconn.rollback()
    """


def test_an_async_transaction_that_cannot_be_measured_fails_the_test_saying_why(pytester: pytest.Pytester, pg_dsn: str) -> None:
    _project(pytester.path, pg_dsn, PIPELINE_TEST)
    result = pytester.runpytest("--querywarden-update")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*could not be measured*", "*pipeline mode inside the test's open transaction*"])
    result.stdout.fnmatch_lines([f"*notes_app.py:{_app_line('# in a pipeline')}*"])
    assert not (pytester.path / "baselines" / "tests_test_paths.py_test_pipeline_in_an_open_transaction.json").exists()

