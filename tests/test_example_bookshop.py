"""The SQLAlchemy + Alembic example (examples/bookshop) as its team runs it: real pytest sessions on a
copy of the project and its committed baselines, against the real PostgreSQL.

An Alembic revision that drops the author page's index and an N+1 through the ORM (a lost
selectinload) block; a revision adding an unrelated column passes; the rows a test adds in its
joined Session's transaction (and commits to a savepoint) are what its baseline's plan saw.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from example_copies import ExampleCopy, copy_example

NEW_BOOKS = 12  # what tests/test_hot_paths.py::test_books_of_a_new_author adds
NEW_ORDERS = 5 + 3  # what tests/test_api.py::test_recent_orders_of_a_new_customer commits and flushes
GUARDED = 6


class Project(ExampleCopy):
    def revision(self, name: str, text: str) -> None:
        """A new Alembic revision, as the team writes one: the template is rebuilt by `alembic upgrade
        head` (the `alembic:alembic.ini` schema item), so the tests compare the schema it makes."""
        self.write(f"migrations/versions/{name}", text)
        heads = subprocess.run(
            [sys.executable, "-m", "alembic", "heads"], cwd=self.root, env=self.env(),
            capture_output=True, text=True, timeout=60,
        )
        assert heads.returncode == 0 and heads.stdout.split() == [name.split("_", 1)[0], "(head)"], heads


@pytest.fixture
def project(tmp_path: Path, pg_dsn: str) -> Iterator[Project]:
    yield Project(*copy_example(tmp_path, "bookshop", "bookshop-tests", pg_dsn), pg_dsn)


def _only_statement(baseline: dict[str, object]) -> dict[str, object]:
    statements = baseline["statements"]
    assert isinstance(statements, list) and len(statements) == 1, statements
    statement = statements[0]
    assert isinstance(statement, dict)
    return statement


def _top_rows(statement: object) -> float:
    assert isinstance(statement, dict)
    return float(statement["plan"]["actual_rows"])


def _indexes(node: dict[str, object]) -> set[str]:
    children = node.get("children") or []
    assert isinstance(children, list)
    return {str(node.get("index"))} - {"None"} | {name for child in children for name in _indexes(child)}


def test_the_committed_baselines_pass_and_the_own_rows_baseline_saw_them(project: Project) -> None:
    run = project.run()
    assert run.returncode == 0, run.output
    assert f"querywarden: passed: {GUARDED} guarded tests ({GUARDED} pass)" in run.output, run.output
    # The test that adds an author and books and commits them (a savepoint of the joined Session):
    # its statement was measured in its transaction, on those rows.
    own = project.baseline("test_books_of_a_new_author")
    assert own["environment"]["measured_in"] == "test transaction"  # type: ignore[index]
    statement = _only_statement(own)
    assert _top_rows(statement) == NEW_BOOKS
    # The async one: orders committed on its own clone and more only flushed in its AsyncSession.
    own = project.baseline("test_recent_orders_of_a_new_customer", "test_api.py")
    assert own["environment"]["measured_in"] == "test transaction"  # type: ignore[index]
    statement = _only_statement(own)
    assert _top_rows(statement) == NEW_ORDERS


DROP_AUTHOR_INDEX = """\
    \"\"\"Books are looked up by author through their foreign key: the composite index goes.

    Revision ID: 0003
    Revises: 0002
    \"\"\"

    from alembic import op

    revision = "0003"
    down_revision = "0002"
    branch_labels = None
    depends_on = None


    def upgrade() -> None:
        op.drop_index("books_author_published_idx", table_name="books")


    def downgrade() -> None:
        op.create_index("books_author_published_idx", "books", ["author_id", "published_on", "id"])
    """


def test_a_revision_dropping_the_author_index_blocks_the_hot_path(project: Project) -> None:
    project.revision("0003_drop_books_author_index.py", DROP_AUTHOR_INDEX)
    run = project.run()
    assert run.returncode == 1, run.output
    assert "tests/test_hot_paths.py::test_books_by_author" in run.failed(), run.output
    assert re.search(rf"querywarden: BLOCKED: {GUARDED} guarded tests \(\d fail", run.output), run.output
    assert "tests/test_hot_paths.py::test_place_order" not in run.failed()  # by primary key: unaffected


DROP_ORDERS_INDEX = DROP_AUTHOR_INDEX.replace(
    '"books_author_published_idx", table_name="books"', '"orders_customer_created_idx", table_name="orders"'
).replace(
    '"books_author_published_idx", "books", ["author_id", "published_on", "id"]',
    '"orders_customer_created_idx", "orders", ["customer_id", "created_at"]',
)


def test_a_revision_dropping_the_orders_index_blocks_the_async_api(project: Project) -> None:
    assert "orders_customer_created_idx" in DROP_ORDERS_INDEX
    project.revision("0003_drop_orders_customer_index.py", DROP_ORDERS_INDEX)
    run = project.run()
    assert run.returncode == 1, run.output
    assert "tests/test_api.py::test_recent_orders" in run.failed(), run.output
    # the calling line is the API's own await, not SQLAlchemy's greenlet machinery
    assert re.search(r"at bookshop/api\.py:\d+ in recent_orders", run.output), run.output


def test_an_n_plus_1_through_the_orm_blocks_the_book_page(project: Project) -> None:
    # The author's other books lose their selectinload: their reviews load lazily, one query a book.
    project.replace(
        "bookshop/store.py",
        "        .limit(MORE_BY_AUTHOR)\n        .options(selectinload(Book.reviews))\n",
        "        .limit(MORE_BY_AUTHOR)\n",
    )
    run = project.run()
    assert run.returncode == 1, run.output
    assert "tests/test_hot_paths.py::test_book_page" in run.failed(), run.output
    # book + its reviews + the other books + one lazy load for each of the 12 other books
    assert re.search(r"the path issues 15 statements instead of 4; #\d ran ×12", run.output), run.output


ADD_GIFT_WRAP = """\
    \"\"\"Orders can be gift-wrapped.

    Revision ID: 0003
    Revises: 0002
    \"\"\"

    import sqlalchemy as sa
    from alembic import op

    revision = "0003"
    down_revision = "0002"
    branch_labels = None
    depends_on = None


    def upgrade() -> None:
        op.add_column("orders", sa.Column("gift_wrap", sa.Boolean, nullable=False, server_default=sa.false()))


    def downgrade() -> None:
        op.drop_column("orders", "gift_wrap")
    """


def test_a_revision_adding_an_unrelated_column_passes(project: Project) -> None:
    project.revision("0003_orders_gift_wrap.py", ADD_GIFT_WRAP)
    project.replace(
        "bookshop/models.py",
        '    status: Mapped[str] = mapped_column(String(10))\n',
        '    status: Mapped[str] = mapped_column(String(10))\n'
        '    gift_wrap: Mapped[bool] = mapped_column(server_default="false")\n',
    )
    run = project.run()
    assert run.returncode == 0, run.output
    assert f"querywarden: passed: {GUARDED} guarded tests" in run.output, run.output


OWN_ROWS = """\
    import json
    from datetime import date, datetime, timezone

    import pytest
    from sqlalchemy import func, select

    from bookshop.models import Author, Book
    from bookshop.store import books_by_author

    NOW = datetime(2026, 6, 1, tzinfo=timezone.utc)


    @pytest.mark.hot_path(calls_per_minute=20000)
    def test_a_page_of_its_own_author(querywarden, querywarden_session, request):
        session = querywarden_session
        author = Author(name="Own", country="FR")
        session.add(author)
        session.flush()
        session.add_all(Book(author_id=author.id, title=f"Own {n}", genre="crime", published_on=date(2025, 1, 1 + n),
                             price_cents=900, stock=1) for n in range(7))
        session.commit()  # a savepoint of the test's transaction
        session.add_all(Book(author_id=author.id, title=f"Late {n}", genre="crime", published_on=date(2025, 3, 1 + n),
                             price_cents=900, stock=1) for n in range(4))
        session.flush()  # not committed at all: still the test's to see
        counted = session.scalar(select(func.count()).select_from(Book).where(Book.author_id == author.id))
        with querywarden.capture(session):
            books = books_by_author(session, author.id)
        (request.config.rootpath / "seen.json").write_text(json.dumps(counted))
        assert len(books) == counted == 11


    def test_b_the_seed_is_whole_again(querywarden_session):
        assert querywarden_session.scalar(select(func.count()).select_from(Author).where(Author.name == "Own")) == 0
    """


def test_rows_of_the_joined_sessions_transaction_are_what_its_baseline_saw(project: Project) -> None:
    project.write("tests/test_hot_paths.py", OWN_ROWS)
    (project.root / "tests" / "test_api.py").unlink()
    for old in project.baselines.iterdir():
        old.unlink()  # this project has the tests above

    recorded = project.run("--querywarden-update", "-v")
    assert recorded.returncode == 0, recorded.output
    assert re.findall(r"::(test_\w+) PASSED", recorded.output) == [
        "test_a_page_of_its_own_author", "test_b_the_seed_is_whole_again",
    ], recorded.output
    seen = json.loads((project.root / "seen.json").read_text())
    baseline = project.baseline("test_a_page_of_its_own_author")
    assert baseline["environment"]["measured_in"] == "test transaction"  # type: ignore[index]
    statement = _only_statement(baseline)
    assert _top_rows(statement) == seen == 11
    plan = statement["plan"]
    assert isinstance(plan, dict)
    assert "books_author_published_idx" in _indexes(plan)  # the new author's rows, by the index

    checked = project.run()
    assert checked.returncode == 0, checked.output
    assert "querywarden: passed: 1 guarded tests (1 pass)" in checked.output, checked.output
