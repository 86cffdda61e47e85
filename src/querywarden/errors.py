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
