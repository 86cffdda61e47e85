"""The time-tracker's project pages through the SQLAlchemy 2 ORM (psycopg 3 driver).

The same tables as schema.sql, mapped declaratively. The tests capture a `Session` with the
querywarden fixture exactly like a raw psycopg connection: every statement the ORM emits (including
the ones eager loading adds) is measured and compared with the test's baseline.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, select
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, relationship, selectinload


class Base(DeclarativeBase):
    pass


class Client(Base):
    __tablename__ = "clients"

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int]
    name: Mapped[str]


class Project(Base):
    __tablename__ = "projects"

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int]
    client_id: Mapped[int | None] = mapped_column(ForeignKey("clients.id"))
    name: Mapped[str]
    color: Mapped[str]
    billable: Mapped[bool]
    archived: Mapped[bool]

    client: Mapped[Client | None] = relationship()


class TimeEntry(Base):
    __tablename__ = "time_entries"

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int]
    user_id: Mapped[int]
    project_id: Mapped[int | None] = mapped_column(ForeignKey("projects.id"))
    description: Mapped[str]
    started_at: Mapped[datetime]
    stopped_at: Mapped[datetime | None]
    duration_s: Mapped[int | None]
    billable: Mapped[bool]

    project: Mapped[Project | None] = relationship()


def active_projects(session: Session, workspace_id: int) -> list[Project]:
    """A workspace's active projects with their clients (eager-loaded: two statements, not 1 + N)."""
    statement = (
        select(Project)
        .where(Project.workspace_id == workspace_id, Project.archived.is_(False))
        .options(selectinload(Project.client))
        .order_by(Project.name)
    )
    return list(session.scalars(statement))

