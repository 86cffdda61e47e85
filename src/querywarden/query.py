"""The unit querywarden guards: one SQL statement with its parameters, call rate and origin."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

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
