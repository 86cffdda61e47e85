"""Loaded into the plugin's runs by benchmarks/plugin_overhead.py (`-p plugin_timing`): adds up the
wall time spent inside `measure` and `replay_against` — running the statements to measure them —
so the benchmark can tell that apart from what the plugin costs around it. Each process appends its
total in seconds to the file named by $QW_BENCH_MEASURED_FILE.
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Callable
from typing import Any

import pytest

import querywarden.engine as engine

_spent = [0.0]


def _timed(function: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(function)
    def timed(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            _spent[0] += time.perf_counter() - started

    return timed


def pytest_configure(config: pytest.Config) -> None:
    engine.measure = _timed(engine.measure)  # type: ignore[assignment]
    engine.replay_against = _timed(engine.replay_against)  # type: ignore[assignment]


def pytest_unconfigure(config: pytest.Config) -> None:
    with open(os.environ["QW_BENCH_MEASURED_FILE"], "a", encoding="utf-8") as out:
        out.write(f"{_spent[0]}\n")
