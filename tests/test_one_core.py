"""Two databases' server processes timed on one CPU with the client (measure.one_core), on a real PostgreSQL:
pinned for the block and given back their CPUs after, or said to be impossible (`False`), never half done."""

from __future__ import annotations

import os

import psycopg
import pytest

from querywarden.database import Server
from querywarden.measure import Side, measure_pair, one_core
from querywarden.policy import MeasureSettings
from querywarden.query import GuardedQuery

from conftest import empty_database


def test_client_and_both_backends_share_one_cpu_for_the_block(server: Server) -> None:
    with empty_database(server) as first, empty_database(server) as second, \
            psycopg.connect(first, autocommit=True) as a, psycopg.connect(second, autocommit=True) as b:
        before = {pid: os.sched_getaffinity(pid) for pid in (0, a.info.backend_pid, b.info.backend_pid)}
        with one_core(a, b) as pinned:
            assert pinned is True
            assert {len(os.sched_getaffinity(pid)) for pid in before} == {1}
            assert os.sched_getaffinity(a.info.backend_pid) == os.sched_getaffinity(0) == os.sched_getaffinity(b.info.backend_pid)
        assert {pid: os.sched_getaffinity(pid) for pid in before} == before


def test_a_backend_it_cannot_pin_leaves_everything_as_it_was(server: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    real = os.sched_setaffinity

    def refuse_backends(pid: int, cpus: object) -> None:
        calls.append(pid)
        if pid != 0:
            raise PermissionError("another user's process")
        real(pid, cpus)  # type: ignore[arg-type]

    with empty_database(server) as first, empty_database(server) as second, \
            psycopg.connect(first, autocommit=True) as a, psycopg.connect(second, autocommit=True) as b:
        mine = os.sched_getaffinity(0)
        monkeypatch.setattr(os, "sched_setaffinity", refuse_backends)
        with one_core(a, b) as pinned:
            assert pinned is False
            assert os.sched_getaffinity(0) == mine
        query = GuardedQuery("q", "SELECT count(*) FROM generate_series(1, 100)", None, calls_per_minute=1.0)
        paired = measure_pair(Side(a, query, {}), Side(b, query, {}), MeasureSettings(min_samples=5, max_samples=10))
        assert paired.timed_alike is False  # said in the verdict's basis, not hidden
        assert paired.comparison is not None
    assert calls
