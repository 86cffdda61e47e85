"""Stand-ins for the plugin's fixtures that measure nothing: the baseline of benchmarks/plugin_overhead.py.

Loaded with `-p no:querywarden -p plugin_off`. Each test still gets a fresh clone of the seeded
template (what a suite with per-test databases pays anyway) and `querywarden.capture` still records
statements (the example's tests assert on them; it costs microseconds), but nothing is measured,
compared or written. The template and server come from $QW_BENCH_TEMPLATE and $QW_BENCH_DSN.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import pytest

from querywarden.capture import Capture, capture
from querywarden.database import Server

_INI_KEYS = (
    "querywarden_dsn",
    "querywarden_baselines",
    "querywarden_schema",
    "querywarden_seed",
    "querywarden_scale",
    "querywarden_calls_per_minute",
    "querywarden_hot_calls_per_minute",
)


def pytest_addoption(parser: pytest.Parser) -> None:
    for key in _INI_KEYS:
        parser.addini(key, "ignored without the querywarden plugin", default=None)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "hot_path(calls_per_minute, budget_ms=None): ignored without the plugin")


class NotMeasured:
    def __init__(self) -> None:
        self.statements = Capture()

    @contextmanager
    def capture(self, target: object) -> Iterator[Capture]:
        with capture(target, self.statements) as block:
            yield block


@pytest.fixture
def querywarden() -> NotMeasured:
    return NotMeasured()


@pytest.fixture
def querywarden_db_dsn() -> Iterator[str]:
    with Server(os.environ["QW_BENCH_DSN"]).clone(os.environ["QW_BENCH_TEMPLATE"], prefix="qw_test") as dsn:
        yield dsn


@pytest.fixture
def querywarden_db(querywarden_db_dsn: str) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(querywarden_db_dsn) as conn:
        yield conn
