"""Errors that stop a run because it cannot measure: each maps to exit code 2, never to a pass."""

from __future__ import annotations


class QuerywardenError(Exception):
    """A problem the user must fix before querywarden can give a verdict.

    The message is one line that names the thing that is wrong and how to fix it.
    """

    exit_code = 2


class CatalogError(QuerywardenError):
    """A catalog file or one of its queries cannot be used."""


class BaselineError(QuerywardenError):
    """A baseline file exists but cannot be trusted (corrupt, wrong version, hand-edited)."""


class DatabaseError(QuerywardenError):
    """The database could not be reached, started, seeded or used for measuring."""


class ConfigError(QuerywardenError):
    """A setting is missing or has a value querywarden cannot use."""


class ResultsError(QuerywardenError):
    """A results file is missing, unreadable or not one querywarden wrote."""


class StatsImportError(QuerywardenError):
    """A pg_stat_statements export cannot be used."""


class RunTimeExceeded(QuerywardenError):
    """The whole-run time cap was reached: the queries it names were not measured, so there is no verdict."""


class ReadOnlyViolation(Exception):
    """A statement measured as a read tried to write (a function with side effects).

    Not a user error: the engine catches it and measures the statement on a throwaway clone instead.
    """
