"""The shop's pages and its checkout through the SQLAlchemy 2 ORM (sync, psycopg 3).

Every function takes the request's `Session`; the tests pass querywarden's `querywarden_session`
and capture it, so each statement the ORM emits, eager loads included, is measured.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, joinedload, selectinload

from .models import Book, Order

PAGE_SIZE = 20
MORE_BY_AUTHOR = 12


def books_by_author(session: Session, author_id: int) -> list[Book]:
    """The author page: their newest books (books_author_published_idx, read backwards)."""
    statement = (
        select(Book)
        .where(Book.author_id == author_id)
        .order_by(Book.published_on.desc(), Book.id.desc())
        .limit(PAGE_SIZE)
    )
    return list(session.scalars(statement))


@dataclass(frozen=True)
class BookPage:
    book: Book
    average_rating: float | None
    more_by_author: list[tuple[Book, float | None]]  # with their average ratings


def _average(book: Book) -> float | None:
    ratings = [review.rating for review in book.reviews]
    return sum(ratings) / len(ratings) if ratings else None


def book_page(session: Session, book_id: int) -> BookPage | None:
    """A book with its author and reviews, and the author's other books with their ratings.

    Four statements whatever the number of books: the reviews come in one IN (...) query per list
    (selectinload), never one query per book.
    """
    book = session.scalars(
        select(Book).where(Book.id == book_id).options(joinedload(Book.author), selectinload(Book.reviews))
    ).first()
    if book is None:
        return None
    others = session.scalars(
        select(Book)
        .where(Book.author_id == book.author_id, Book.id != book.id)
        .order_by(Book.published_on.desc(), Book.id.desc())
        .limit(MORE_BY_AUTHOR)
        .options(selectinload(Book.reviews))
    ).all()
    return BookPage(book, _average(book), [(other, _average(other)) for other in others])


class OutOfStock(Exception):
    pass


def place_order(session: Session, customer_id: int, book_id: int, quantity: int, now: datetime) -> Order:
    """Checkout: take the book's stock (row-locked) and record the order, in one transaction."""
    book = session.scalars(select(Book).where(Book.id == book_id).with_for_update()).one()
    if book.stock < quantity:
        raise OutOfStock(book_id)
    book.stock -= quantity
    order = Order(
        customer_id=customer_id, book=book, quantity=quantity,
        total_cents=quantity * book.price_cents, status="paid", created_at=now,
    )
    session.add(order)
    session.commit()
    return order
