"""The author page reads an author's newest books: index them by author and publication date.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("books_author_published_idx", "books", ["author_id", "published_on", "id"])


def downgrade() -> None:
    op.drop_index("books_author_published_idx", table_name="books")
