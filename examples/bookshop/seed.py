"""The bookshop's seed: a catalogue of 100,000 books by 5,000 authors, 300,000 reviews, 20,000
customers and their 150,000 orders at scale 1 (the tests run at 0.5: 290k rows in about 3 s),
loaded after the Alembic revisions.

Skewed like a real shop: a few prolific authors write most books (author 1 has thousands of
them), a few bestsellers collect most reviews, a few customers place most orders. `kit` makes it
deterministic (a fixed random() sequence, rows in id order), so every rebuild has the same rows
and the planner the same statistics. Timestamps count back from a fixed "now", 2026-06-01 UTC.
"""

from __future__ import annotations

from typing import Any

import psycopg

from querywarden.seeding.kit import SeedKit, skewed_sql

NOW = "timestamptz '2026-06-01 00:00:00+00'"


def seed(conn: psycopg.Connection[Any], *, kit: SeedKit) -> None:
    authors, books, reviews = kit.scaled(5_000), kit.scaled(100_000), kit.scaled(300_000)
    customers, orders = kit.scaled(20_000), kit.scaled(150_000)
    kit.setseed()
    kit.generate("authors", {
        "name": "'Author ' || g",
        "country": "(ARRAY['GB', 'US', 'FR', 'DE', 'JP', 'BR'])[1 + g %% 6]",
    }, authors)
    kit.generate("books", {
        "author_id": skewed_sql(authors, 3),
        "title": "'Book ' || g",
        "genre": "(ARRAY['fiction', 'crime', 'history', 'science', 'poetry', 'children'])[1 + g %% 6]",
        "published_on": "date '2026-06-01' - (floor(random() * 9000))::int",
        "price_cents": "500 + (g %% 40) * 100",
        "stock": "1000 + g %% 50",
    }, books)
    kit.generate("reviews", {
        "book_id": skewed_sql(books, 2),
        "rating": "1 + floor(power(random(), 0.5) * 5)::bigint",
        "body": "'Review ' || g",
        "created_at": f"{NOW} - make_interval(mins => ({reviews} - g)::int * 3)",
    }, reviews)
    kit.generate("customers", {
        "name": "'Customer ' || g",
        "email": "'customer' || g || '@example.com'",
    }, customers)
    kit.generate("orders", {
        "customer_id": skewed_sql(customers, 2.5),
        "book_id": skewed_sql(books, 2),
        "quantity": "1 + (g %% 3)",
        "total_cents": "(1 + (g %% 3)) * 1500",
        "status": "(ARRAY['paid', 'shipped', 'delivered', 'refunded'])[1 + floor(random() * 4)::int]",
        "created_at": f"{NOW} - make_interval(mins => ({orders} - g)::int * 4)",
    }, orders)
