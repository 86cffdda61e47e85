"""The bookshop's hot code paths, each guarded against query regressions by querywarden.

The sync tests use `querywarden_session`: a SQLAlchemy Session joined into a transaction rolled
back after the test (SQLAlchemy's own testing recipe), on a clone of the seeded database, where
`session.commit()` releases a savepoint. Each runs a code path of bookshop/store.py inside
`querywarden.capture(session)`. After the test the plugin measures every statement the path issued
and compares the path with its baseline in baselines/bookshop-tests/: a plan that reads more (an
index a migration dropped) or more statements (an N+1 loop through the ORM) fails a hot path's test.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bookshop.models import Author, Book, Order, Review
from bookshop.store import MORE_BY_AUTHOR, PAGE_SIZE, book_page, books_by_author, place_order
from conftest import BIG_CUSTOMER, BOOK, PROLIFIC_AUTHOR
from querywarden.plugin import Querywarden

NOW = datetime(2026, 6, 1, tzinfo=timezone.utc)
NEW_BOOKS = 12


@pytest.mark.hot_path(calls_per_minute=20000)
def test_books_by_author(querywarden: Querywarden, querywarden_session: Session) -> None:
    with querywarden.capture(querywarden_session) as captured:
        books = books_by_author(querywarden_session, PROLIFIC_AUTHOR)
    assert len(books) == PAGE_SIZE
    assert all(book.author_id == PROLIFIC_AUTHOR for book in books)
    assert [book.published_on for book in books] == sorted((book.published_on for book in books), reverse=True)
    assert len(captured) == 1


@pytest.mark.hot_path(calls_per_minute=8000)
def test_book_page(querywarden: Querywarden, querywarden_session: Session) -> None:
    # The baseline counts the statements: a lost selectinload (a query per book of the page) blocks
    # this test as the guard's verdict, without an assertion on the count here.
    with querywarden.capture(querywarden_session):
        page = book_page(querywarden_session, BOOK)
        assert page is not None
        shown = [(other.title, rating) for other, rating in page.more_by_author]
    assert page.book.id == BOOK and page.book.author.name
    assert page.average_rating is not None
    assert len(shown) == MORE_BY_AUTHOR
    assert any(rating is not None for _, rating in shown)


@pytest.mark.hot_path(calls_per_minute=400)
def test_place_order(querywarden: Querywarden, querywarden_session: Session) -> None:
    stock = querywarden_session.get_one(Book, BOOK).stock
    with querywarden.capture(querywarden_session):
        order = place_order(querywarden_session, BIG_CUSTOMER, BOOK, quantity=2, now=NOW)
    querywarden_session.expire_all()
    assert querywarden_session.get_one(Book, BOOK).stock == stock - 2
    assert querywarden_session.get_one(Order, order.id).total_cents == 2 * order.book.price_cents


@pytest.mark.hot_path(calls_per_minute=20000)
def test_books_of_a_new_author(querywarden: Querywarden, querywarden_session: Session) -> None:
    """The rows this page shows exist only in the test's transaction: they are measured there."""
    author = Author(name="New Author", country="GB")
    author.books = [
        Book(title=f"Debut {number}", genre="poetry", published_on=date(2026, 1, 1) + timedelta(days=number),
             price_cents=1500, stock=10, reviews=[Review(rating=5, body="Lovely", created_at=NOW)])
        for number in range(NEW_BOOKS)
    ]
    querywarden_session.add(author)
    querywarden_session.commit()  # releases the test's savepoint: still rolled back after the test
    counted = querywarden_session.scalar(select(func.count()).select_from(Book).where(Book.author_id == author.id))
    assert counted == NEW_BOOKS
    with querywarden.capture(querywarden_session):
        books = books_by_author(querywarden_session, author.id)
    assert len(books) == counted
    assert [book.title for book in books] == [f"Debut {number}" for number in reversed(range(NEW_BOOKS))]
