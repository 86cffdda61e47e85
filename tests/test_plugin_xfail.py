"""A blocked guard fails the session even when pytest expects the test to fail.

The guard fails a test whose path regressed; under `xfail` pytest would count that failure as
expected and the run would exit 0 while querywarden prints BLOCKED. The inner project is the one
tests/test_plugin.py guards: its baselines are recorded, then the hot path turns into an N+1 loop
(101 statements instead of 1, a block that rests on no timing) under each way of marking it xfail.
"""

from __future__ import annotations

from pathlib import Path

import pytest

# Loaded here so the inner in-process sessions find them imported (pytester drops what they import).
import querywarden.config  # noqa: F401
import querywarden.engine  # noqa: F401
import querywarden.plugin.outcome  # noqa: F401

from test_plugin import APP_N_PLUS_ONE, HOT, TESTS, write_project

pytest_plugins = ["pytester"]

HOT_MARKER = "@pytest.mark.hot_path(calls_per_minute=12000)\n"
SWALLOWED = (
    f"querywarden: test {HOT} is marked xfail, but its guard blocked: a blocked query is never an expected failure"
)

# conftest ways a project marks known failures: a marker added at collection, or a report rewritten
CONFTEST_MARKER = '''\
import pytest


def pytest_collection_modifyitems(items):
    for item in items:
        if item.name == "test_owner_items":
            item.add_marker(pytest.mark.xfail(reason="known slow page"))
'''
CONFTEST_REPORT = '''\
import pytest


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if item.name == "test_owner_items" and report.failed:
        report.outcome = "skipped"
        report.wasxfail = "known slow page"
    return report
'''


def recorded_project(pytester: pytest.Pytester, pg_dsn: str) -> Path:
    """The inner project with its baselines recorded, then the hot path rewritten into an N+1 loop."""
    root = pytester.path
    write_project(root, pg_dsn)
    result = pytester.runpytest("--querywarden-update")
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
    (root / "app.py").write_text(APP_N_PLUS_ONE)
    return root


def mark_hot_test(root: Path, decorator: str) -> None:
    (root / "tests" / "test_app.py").write_text(TESTS.replace(HOT_MARKER, decorator + HOT_MARKER))


@pytest.mark.parametrize(
    ("decorator", "conftest", "workers"),
    [
        ('@pytest.mark.xfail(reason="known slow page")\n', None, []),
        ('@pytest.mark.xfail(reason="known slow page", strict=True)\n', None, []),
        ("", CONFTEST_MARKER, []),
        ("", CONFTEST_REPORT, []),
        ('@pytest.mark.xfail(reason="known slow page")\n', None, ["-n", "2"]),
    ],
    ids=["marker", "strict", "conftest-marker", "conftest-report", "xdist"],
)
def test_a_blocked_guard_fails_the_session_under_xfail(
    pytester: pytest.Pytester, pg_dsn: str, decorator: str, conftest: str | None, workers: list[str]
) -> None:
    root = recorded_project(pytester, pg_dsn)
    mark_hot_test(root, decorator)
    if conftest is not None:
        (root / "tests" / "conftest.py").write_text(conftest)

    result = pytester.runpytest(*workers)
    assert result.ret == pytest.ExitCode.TESTS_FAILED, result.stdout.str()
    result.assert_outcomes(passed=1, xfailed=1)  # pytest still counts it as expected: the session says otherwise
    result.stdout.fnmatch_lines(
        [
            "*= querywarden =*",
            f"FAIL {HOT} (12,000 calls/min, 101 statements) got slower and blocks: 1 of 2 statements block (see its failure)",
            # the failure pytest does not show for an expected one is shown here
            f"querywarden: {HOT} (12,000 calls/min, 101 statements) got slower and blocks: 1 of 2 statements block",
            "  - the path issues 101 statements instead of 1; #2 ran ×100",
            SWALLOWED,
            "querywarden: BLOCKED: 2 guarded tests (1 fail, 1 *)",
        ]
    )


def test_an_xfail_test_that_fails_by_itself_stays_an_expected_failure(pytester: pytest.Pytester, pg_dsn: str) -> None:
    """Its body fails before the guard measures anything: nothing blocked, so nothing turns the run red."""
    root = recorded_project(pytester, pg_dsn)
    tests = TESTS.replace(HOT_MARKER, '@pytest.mark.xfail(reason="rows are wrong")\n' + HOT_MARKER)
    (root / "tests" / "test_app.py").write_text(tests.replace("assert len(rows) == 100", "assert len(rows) == 99"))

    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
    result.assert_outcomes(passed=1, xfailed=1)
    result.stdout.fnmatch_lines(["querywarden: passed: 1 guarded tests (*)"])
    result.stdout.no_fnmatch_line("*BLOCKED*")
    result.stdout.no_fnmatch_line("*its guard blocked*")


def test_an_imperative_xfail_ends_the_test_before_its_guard(pytester: pytest.Pytester, pg_dsn: str) -> None:
    """`pytest.xfail()` in the body stops it like a failing assert: a partial path is never judged."""
    root = recorded_project(pytester, pg_dsn)
    tests = TESTS.replace("    assert len(rows) == 100\n", '    pytest.xfail("known slow page")\n', 1)
    (root / "tests" / "test_app.py").write_text(tests)

    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
    result.assert_outcomes(passed=1, xfailed=1)
    result.stdout.no_fnmatch_line("*BLOCKED*")
