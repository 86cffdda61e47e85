"""The unit querywarden guards: one SQL statement with its parameters, call rate and origin."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

Params = Mapping[str, Any] | Sequence[Any] | None


@dataclass(frozen=True)
class SourceLocation:
    """Where a query comes from: a catalog file line or the application line that issued it."""

    path: str
    line: int

    def __str__(self) -> str:
        return f"{self.path}:{self.line}"


@dataclass(frozen=True)
class GuardedQuery:
    """A statement to measure, as written by the user (psycopg placeholders), with what weights it."""

    name: str
    sql: str
    params: Params
    calls_per_minute: float
    budget_ms: float | None = None
    source: SourceLocation | None = None
    # A reviewed exception: why a sequential scan is right for this query (a small table read whole,
    # a report over everything). The reason goes into its baseline for every later review to see.
    allow_seq_scan: str | None = None


Binding = Literal["server", "client", "raw"]
"""How the statement's parameters reach the server: psycopg's `Cursor`, `ClientCursor` or `RawCursor`."""


@dataclass(frozen=True)
class CapturedStatement:
    """One statement as the application ran it.

    `executions` is more than 1 for `executemany`; `params` then holds the first parameter set.
    `database` is the libpq conninfo of the connection it ran on, password included, so it can be
    measured there; it is never shown (keep it out of messages).
    """

    sql: str
    params: Params
    source: SourceLocation | None
    function: str | None
    via: str
    executions: int = 1
    binding: Binding = "server"
    database: str = field(default="", repr=False, compare=False)
    # The driver connection it ran on (a weak reference: None once it is gone), so a statement whose
    # transaction holds the test's uncommitted rows can be measured where those rows are visible.
    connection: Callable[[], object | None] | None = field(default=None, repr=False, compare=False)
    # What the capture's `before` made of it just before it ran (the plugin: its measurement inside
    # the test's transaction, when only that transaction could see its data).
    prior: object | None = field(default=None, repr=False, compare=False)

    @property
    def where(self) -> str:
        """The calling line as people read it: `app.py:42 in dashboard`."""
        if self.source is None:
            return "unknown caller"
        return f"{self.source}" + (f" in {self.function}" if self.function else "")
