"""Capturing what application code runs: raw psycopg, SQLAlchemy Core and ORM, Django; real PostgreSQL."""

from __future__ import annotations

import importlib.util
import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import psycopg
import pytest
from psycopg import sql
from sqlalchemy import ForeignKey, column, create_engine, insert, select, table, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, relationship, selectinload
from sqlalchemy.pool import NullPool

from querywarden.capture import Capture, CapturedStatement, capture, conninfo_of
from querywarden.database import Server, dbname_of


@pytest.fixture(scope="module")
def shop_dsn(server: Server) -> Iterator[str]:
    """A small database shared by this module's tests (they only read it, or roll back)."""
    name = f"qw_test_capture_{uuid.uuid4().hex[:8]}"
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


@pytest.fixture
def conn(shop_dsn: str) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(shop_dsn) as connection:
        yield connection


def line_of(text: str) -> int:
    """The line of this file that contains `text` (so tests do not hard-code line numbers)."""
    for number, line in enumerate(Path(__file__).read_text().splitlines(), start=1):
        if text in line and "line_of(" not in line:
            return number
    raise AssertionError(text)


def rows(captured: Capture) -> list[tuple[str, Any, int, str]]:
    return [(s.sql, s.params, s.executions, s.via) for s in captured]


# --- raw psycopg ------------------------------------------------------------------------------------


def test_psycopg_execute_executemany_stream_and_server_side_cursors(conn: psycopg.Connection[Any]) -> None:
    with capture(conn) as captured:
        conn.execute("SELECT name FROM owners WHERE id = %s", (1,)).fetchone()  # conn.execute
        with conn.cursor() as cur:
            cur.executemany("SELECT title FROM items WHERE id = %(id)s", [{"id": 1}, {"id": 2}, {"id": 3}])
            list(cur.stream("SELECT id FROM items WHERE owner_id = %s", [2]))
        with conn.cursor(name="pages") as named:  # server-side cursor
            named.execute("SELECT id, title FROM items WHERE id > %s", (10,))
            assert len(named.fetchall()) == 10
        conn.execute(sql.SQL("SELECT {} FROM owners").format(sql.Identifier("name")))
        conn.execute(b"SELECT count(*) FROM items")
    assert rows(captured) == [
        ("SELECT name FROM owners WHERE id = %s", (1,), 1, "psycopg"),
        ("SELECT title FROM items WHERE id = %(id)s", {"id": 1}, 3, "psycopg"),
        ("SELECT id FROM items WHERE owner_id = %s", (2,), 1, "psycopg"),
        ("SELECT id, title FROM items WHERE id > %s", (10,), 1, "psycopg server-side cursor"),
        ('SELECT "name" FROM owners', None, 1, "psycopg"),
        ("SELECT count(*) FROM items", None, 1, "psycopg"),
    ]
    assert captured.executions == 8
    first = captured.statements[0]
    assert first.source is not None and first.source.path == __file__
    assert first.source.line == line_of("# conn.execute")
    assert first.function == "test_psycopg_execute_executemany_stream_and_server_side_cursors"
    assert first.binding == "server"
    assert dbname_of(first.database) == dbname_of(conn.info.dsn)


def test_psycopg_factories_are_restored_after_the_block_even_when_it_raises(conn: psycopg.Connection[Any]) -> None:
    conn.cursor_factory = psycopg.ClientCursor
    with pytest.raises(RuntimeError):
        with capture(conn) as captured:
            assert conn.cursor_factory is not psycopg.ClientCursor
            conn.execute("SELECT 1")
            raise RuntimeError("the app failed")
    assert conn.cursor_factory is psycopg.ClientCursor
    assert conn.server_cursor_factory is psycopg.ServerCursor
    assert [(s.sql, s.binding) for s in captured] == [("SELECT 1", "client")]
    conn.execute("SELECT 2")  # after the block: not recorded anywhere
    assert len(captured) == 1


def test_raw_cursor_statements_keep_their_binding(conn: psycopg.Connection[Any]) -> None:
    conn.cursor_factory = psycopg.RawCursor
    with capture(conn) as captured:
        conn.execute("SELECT name FROM owners WHERE id = $1", (1,))
    assert [(s.sql, s.binding) for s in captured] == [("SELECT name FROM owners WHERE id = $1", "raw")]


def test_nested_and_repeated_captures_each_see_their_block_and_record_once(conn: psycopg.Connection[Any]) -> None:
    test_level = Capture()
    with capture(conn, test_level) as outer:
        conn.execute("SELECT 1")
        with capture(conn, test_level) as inner:
            conn.execute("SELECT 2")
        conn.execute("SELECT 3")
    with capture(conn, test_level) as again:
        conn.execute("SELECT 4")
    assert [s.sql for s in outer] == ["SELECT 1", "SELECT 2", "SELECT 3"]
    assert [s.sql for s in inner] == ["SELECT 2"]
    assert [s.sql for s in again] == ["SELECT 4"]
    assert [s.sql for s in test_level] == ["SELECT 1", "SELECT 2", "SELECT 3", "SELECT 4"]
    assert conn.cursor_factory is psycopg.Cursor


def test_failed_statements_and_copied_parameters(conn: psycopg.Connection[Any]) -> None:
    params = [1]
    with capture(conn) as captured:
        conn.execute("SELECT name FROM owners WHERE id = %s", params)
        params.append(2)  # the application reuses its list: the record keeps what ran
        with pytest.raises(psycopg.errors.UndefinedTable):
            conn.execute("SELECT * FROM no_such_table")
    conn.rollback()
    assert rows(captured) == [("SELECT name FROM owners WHERE id = %s", (1,), 1, "psycopg")]


def test_the_calling_line_is_the_application_s_not_a_library_s(conn: psycopg.Connection[Any], tmp_path: Path) -> None:
    app = load_module(
        tmp_path / "shop_app.py",
        """
        def owner_name(conn, owner_id):
            return conn.execute("SELECT name FROM owners WHERE id = %s", (owner_id,)).fetchone()


        def page(conn):
            return [owner_name(conn, i) for i in (1, 2)]
        """,
    )
    with capture(conn) as captured:
        app.page(conn)
    assert [(Path(s.source.path).name, s.source.line, s.function) for s in captured if s.source] == [
        ("shop_app.py", 3, "owner_name"),
        ("shop_app.py", 3, "owner_name"),
    ]
    assert captured.statements[0].where.endswith("shop_app.py:3 in owner_name")


def test_the_database_dsn_keeps_the_password_but_the_record_never_shows_it() -> None:
    statement = CapturedStatement("SELECT 1", None, None, None, "psycopg", database="host=h password=secret")
    assert "secret" not in repr(statement)
    assert conninfo_of(object()) == ""


def test_targets_that_cannot_be_captured_say_what_can() -> None:
    with pytest.raises(TypeError, match="pass a psycopg Connection, a SQLAlchemy Engine/Connection/Session or a Django connection"):
        with capture(object()):
            pass


def load_module(path: Path, source: str) -> ModuleType:
    path.write_text(textwrap.dedent(source))
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# --- SQLAlchemy ---------------------------------------------------------------------------------------


def sqlalchemy_engine(dsn: str) -> Engine:
    return create_engine("postgresql+psycopg://", creator=lambda: psycopg.connect(dsn), poolclass=NullPool)


def test_sqlalchemy_core_through_the_engine_and_a_connection(shop_dsn: str) -> None:
    engine = sqlalchemy_engine(shop_dsn)
    items = table("items", column("id"), column("owner_id"), column("title"))
    try:
        with capture(engine) as captured, engine.connect() as connection:
            connection.execute(text("SELECT name FROM owners WHERE id = :id"), {"id": 3})  # core text
            connection.execute(select(items.c.title).where(items.c.owner_id == 2)).all()
            connection.execute(insert(items), [{"id": 100 + i, "owner_id": 1, "title": "x"} for i in range(3)])
            connection.rollback()
        with engine.connect() as connection, capture(connection) as on_connection:
            connection.execute(text("SELECT count(*) FROM items"))
        assert not engine.dispatch.after_cursor_execute
    finally:
        engine.dispose()
    assert [(s.sql, s.params, s.via) for s in captured][:2] == [
        ("SELECT name FROM owners WHERE id = %(id)s", {"id": 3}, "sqlalchemy"),
        ("SELECT items.title \nFROM items \nWHERE items.owner_id = %(owner_id_1)s::INTEGER", {"owner_id_1": 2}, "sqlalchemy"),
    ]
    assert captured.statements[2].sql.startswith("INSERT INTO items")
    assert sum(s.executions for s in captured.statements[2:]) >= 1
    first = captured.statements[0]
    assert first.source is not None and first.source.line == line_of("# core text")
    assert dbname_of(first.database) == dbname_of(shop_dsn)
    assert [s.sql for s in on_connection] == ["SELECT count(*) FROM items"]


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


def test_sqlalchemy_orm_session_and_a_lazy_loading_loop(shop_dsn: str) -> None:
    engine = sqlalchemy_engine(shop_dsn)
    try:
        with Session(engine) as session:
            with capture(session) as lazy:
                titles = [(item.title, item.owner.name) for item in session.scalars(select(Item).where(Item.id <= 10))]
            session.expunge_all()
            with capture(session) as eager:
                eager_items = session.scalars(select(Item).where(Item.id <= 10).options(selectinload(Item.owner))).all()
                assert all(item.owner.name for item in eager_items)
    finally:
        engine.dispose()
    assert len(titles) == 10
    # one query for the items, then one per distinct owner the loop touches: the N+1 a baseline catches
    assert len(lazy) == 1 + 5
    assert {s.sql.split("\nFROM")[0] for s in lazy.statements[1:]} == {"SELECT owners.id, owners.name "}
    assert all(s.source and s.source.path == __file__ for s in lazy)
    assert len(eager) == 2


# --- Django ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def django_connection(shop_dsn: str) -> Any:
    """Django configured once per process with the psycopg 3 backend pointed at this module's database."""
    import django
    from django.conf import settings

    params = psycopg.conninfo.conninfo_to_dict(shop_dsn)
    if not settings.configured:
        settings.configure(
            DATABASES={
                "default": {
                    "ENGINE": "django.db.backends.postgresql",
                    "NAME": params["dbname"],
                    "USER": params.get("user", ""),
                    "PASSWORD": params.get("password", ""),
                    "HOST": params.get("host", ""),
                    "PORT": params.get("port", ""),
                }
            },
            INSTALLED_APPS=[],
            USE_TZ=True,
        )
        django.setup()
    from django.db import connection

    assert connection.settings_dict["NAME"] == params["dbname"], "Django was configured for another database"
    yield connection
    connection.close()


def test_django_connection_raw_cursor_and_orm(django_connection: Any) -> None:
    from django.db import connection as proxy, connections, models

    class Owner(models.Model):
        name = models.TextField()

        class Meta:
            app_label = "querywarden_capture_test"
            db_table = "owners"
            managed = False

    with capture(proxy) as captured:  # django.db.connection, the per-thread proxy
        with proxy.cursor() as cursor:
            cursor.execute("SELECT name FROM owners WHERE id = %s", [2])
            cursor.executemany("SELECT title FROM items WHERE id = %s", [[1], [2]])
        with capture(connections["default"]) as inner:  # the same connection: recorded once per block
            names = list(Owner.objects.filter(id__lte=3).order_by("id").values_list("name", flat=True))
    assert names == ["owner 1", "owner 2", "owner 3"]
    assert [(s.sql, s.params, s.executions, s.via) for s in captured][:2] == [
        ("SELECT name FROM owners WHERE id = %s", (2,), 1, "django"),
        ("SELECT title FROM items WHERE id = %s", (1,), 2, "django"),
    ]
    orm = captured.statements[2]
    assert orm.sql == 'SELECT "owners"."name" AS "name" FROM "owners" WHERE "owners"."id" <= %s ORDER BY "owners"."id" ASC'
    assert orm.binding == "client"  # Django's psycopg 3 backend binds client-side by default
    assert orm.source is not None and orm.source.path == __file__
    assert [s.sql for s in inner] == [orm.sql]
    assert len(captured) == 3
    assert django_connection.execute_wrappers == []
    assert dbname_of(orm.database) == django_connection.settings_dict["NAME"]
    assert "django" in sys.modules


# --- values composed into the SQL ------------------------------------------------------------------

SECRET_EMAIL = "jane.private@example.org"
SECRET_ID = 8675309123


def rerun(conn: psycopg.Connection[Any], statement: CapturedStatement) -> list[tuple[Any, ...]]:
    """Run a recorded statement the way the engine measures it: its SQL and parameters on a cursor of its binding."""
    cursor_class = {"server": psycopg.Cursor, "client": psycopg.ClientCursor, "raw": psycopg.RawCursor}[statement.binding]
    with cursor_class(conn) as cur:
        return cur.execute(statement.sql, statement.params).fetchall()


def test_literals_composed_into_a_statement_are_recorded_as_parameters(conn: psycopg.Connection[Any]) -> None:
    """A `sql.Literal` must not put personal data into the recorded SQL, and what is recorded still runs."""
    owner = sql.SQL("SELECT {}::text AS who, name FROM owners WHERE id = {}")
    statements = [
        (owner.format(sql.Literal(SECRET_EMAIL), sql.Literal(1)), None),
        # the application's own placeholders keep their places among the literals
        (sql.SQL("SELECT %s, {}, %s, {}").format(sql.Literal(SECRET_EMAIL), sql.Literal(SECRET_ID)), (7, 8)),
        (sql.SQL("SELECT %(n)s, {} AS who").format(sql.Literal(SECRET_EMAIL)), {"n": 7}),
        # a % the application wrote without parameters must stay a percent sign once there are some
        (sql.SQL("SELECT {} || '%' AS who").format(sql.Literal(SECRET_EMAIL)), None),
        (sql.SQL("SELECT id FROM items WHERE id IN ({}) ORDER BY id").format(
            sql.SQL(", ").join(sql.Literal(n) for n in (3, 4, SECRET_ID))), None),
        # `interval '1 day'`: a parameter cannot follow a type name, a cast of it can
        (sql.SQL("SELECT date {} + interval {}, {} AS who").format(
            sql.Literal("2024-02-28"), sql.Literal("1 day"), sql.Literal(SECRET_EMAIL)), None),
    ]
    captured = Capture()
    with capture(conn, captured):
        originals = [conn.execute(query, params).fetchall() for query, params in statements]
    conn.cursor_factory = psycopg.ClientCursor
    with capture(conn, captured):
        originals.append(conn.execute(sql.SQL("SELECT %s, {} AS who").format(sql.Literal(SECRET_EMAIL)), (5,)).fetchall())
    conn.cursor_factory = psycopg.RawCursor
    with capture(conn, captured):
        originals.append(conn.execute(sql.SQL("SELECT $1, {} AS who").format(sql.Literal(SECRET_EMAIL)), (5,)).fetchall())
    conn.cursor_factory = psycopg.Cursor
    with capture(conn, captured):
        with conn.cursor(name="pages") as named:
            named.execute(sql.SQL("SELECT id FROM items WHERE title <> {} ORDER BY id LIMIT 2").format(sql.Literal(SECRET_EMAIL)))
            originals.append(named.fetchall())
        with conn.cursor() as cur:
            cur.executemany(sql.SQL("SELECT title FROM items WHERE id = %s AND title <> {}").format(sql.Literal(SECRET_EMAIL)), [(1,), (2,)])
    assert [(s.sql, s.params, s.binding) for s in captured] == [
        ("SELECT %s::text AS who, name FROM owners WHERE id = %s", (SECRET_EMAIL, 1), "server"),
        ("SELECT %s, %s, %s, %s", (7, SECRET_EMAIL, 8, SECRET_ID), "server"),
        ("SELECT %(n)s, %(qw_literal_1)s AS who", {"n": 7, "qw_literal_1": SECRET_EMAIL}, "server"),
        ("SELECT %s || '%%' AS who", (SECRET_EMAIL,), "server"),
        ("SELECT id FROM items WHERE id IN (%s, %s, %s) ORDER BY id", (3, 4, SECRET_ID), "server"),
        ("SELECT CAST(%s AS date) + CAST(%s AS interval), %s AS who", ("2024-02-28", "1 day", SECRET_EMAIL), "server"),
        ("SELECT %s, %s AS who", (5, SECRET_EMAIL), "client"),
        ("SELECT $1, $2 AS who", (5, SECRET_EMAIL), "raw"),
        ("SELECT id FROM items WHERE title <> %s ORDER BY id LIMIT 2", (SECRET_EMAIL,), "server"),
        ("SELECT title FROM items WHERE id = %s AND title <> %s", (1, SECRET_EMAIL), "server"),
    ]
    assert captured.statements[-1].executions == 2
    assert rerun(conn, captured.statements[-1]) == [("item 1",)]  # an executemany keeps its first parameter set
    for statement, rows_then in zip(captured.statements, originals):
        assert rerun(conn, statement) == rows_then, statement.sql
    for statement in captured:
        assert SECRET_EMAIL not in statement.sql and str(SECRET_ID) not in statement.sql


def test_a_composed_statement_without_literals_is_recorded_as_it_ran(conn: psycopg.Connection[Any]) -> None:
    query = sql.SQL("SELECT {} FROM owners WHERE id = %s AND name LIKE 'owner%%'").format(sql.Identifier("name"))
    with capture(conn) as captured:
        conn.execute(query, (1,))
    assert rows(captured) == [('SELECT "name" FROM owners WHERE id = %s AND name LIKE \'owner%%\'', (1,), 1, "psycopg")]


def test_a_baseline_of_a_composed_literal_does_not_hold_the_value(
    server: Server, conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    """Through the plugin's path: capture, measure, write the baseline file a team commits."""
    from querywarden.baseline import PathBaselineStore
    from querywarden.engine import Site, no_probe
    from querywarden.path import PathSpec
    from querywarden.plugin.outcome import check_test
    from querywarden.policy import MeasureSettings, Policy

    with capture(conn) as captured:
        conn.execute(sql.SQL("SELECT id FROM owners WHERE name = {} OR id = {}").format(
            sql.Literal(SECRET_EMAIL), sql.Literal(SECRET_ID))).fetchall()
    conn.rollback()  # the engine measures on its own connection; the test's transaction holds nothing
    store = PathBaselineStore(tmp_path)
    outcome = check_test(
        PathSpec("test_owner_lookup", 60.0), captured.statements, store, Site(server),
        MeasureSettings(warmup=1, min_samples=3, max_samples=5, time_cap_s=0.2), Policy(),
        probe=no_probe, update=True, root=tmp_path,
    )
    assert outcome.status == "written", outcome
    [written] = [path for path in tmp_path.rglob("*") if path.is_file()]
    text = written.read_text(encoding="utf-8")
    assert "SELECT id FROM owners WHERE name = %s OR id = %s" in text
    assert SECRET_EMAIL not in text and str(SECRET_ID) not in text


def test_django_records_a_composed_literal_as_a_parameter(django_connection: Any) -> None:
    from django.db import connection as proxy

    with capture(proxy) as captured:
        with proxy.cursor() as cursor:
            cursor.execute(sql.SQL("SELECT name FROM owners WHERE id = %s AND name <> {}").format(sql.Literal(SECRET_EMAIL)), [2])
            ran = cursor.fetchall()
    [statement] = captured.statements
    assert (statement.sql, statement.params) == ("SELECT name FROM owners WHERE id = %s AND name <> %s", (2, SECRET_EMAIL))
    with psycopg.connect(statement.database) as conn:
        assert rerun(conn, statement) == [tuple(row) for row in ran]
