"""The plugin's settings, header and usage errors: real pytest sessions that need no database."""

from __future__ import annotations

import textwrap

import pytest

# Loaded here so the inner in-process sessions find them imported (pytester drops what they import).
import querywarden.config  # noqa: F401
import querywarden.engine  # noqa: F401
import querywarden.plugin.outcome  # noqa: F401

pytest_plugins = ["pytester"]
INNER_ADDOPTS = "-p no:cacheprovider -p no:hypothesispytest -p no:benchmark -p no:django -p no:asyncio"

INI = f"""\
[pytest]
addopts = {INNER_ADDOPTS}
querywarden_dsn = postgresql://ini_user:ini-secret@db.example:5432/app
querywarden_baselines = qw/baselines
querywarden_schema = schema.sql
querywarden_seed = data.sql
querywarden_scale = 0.1
querywarden_calls_per_minute = 30
"""


@pytest.fixture(autouse=True)
def no_dsn_in_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("QUERYWARDEN_DSN", raising=False)


def test_header_names_each_setting_and_where_it_came_from(pytester: pytest.Pytester) -> None:
    pytester.makefile(".ini", pytest=INI)
    result = pytester.runpytest("--co")
    result.stdout.fnmatch_lines(
        [
            "querywarden: database postgresql://ini_user:***@db.example:5432/app (from querywarden_dsn in pytest.ini)",
            "querywarden: baselines qw/baselines (from querywarden_baselines in pytest.ini)",
            "querywarden: seed schema schema.sql (from querywarden_schema in pytest.ini), data data.sql (from "
            "querywarden_seed in pytest.ini) at scale 0.1 (from querywarden_scale in pytest.ini)",
            "querywarden: default rate 30 calls/min (from querywarden_calls_per_minute in pytest.ini), hot from 1000 (from default)",
        ]
    )
    assert "ini-secret" not in result.stdout.str()


def test_flag_beats_environment_beats_ini(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    pytester.makefile(".ini", pytest=INI)
    monkeypatch.setenv("QUERYWARDEN_DSN", "host=env.example user=env password=env-secret dbname=app")
    result = pytester.runpytest("--co")
    result.stdout.fnmatch_lines(["querywarden: database host=env.example user=env password=*** dbname=app (from $QUERYWARDEN_DSN)"])
    result = pytester.runpytest(
        "--co", "--querywarden-dsn", "postgresql://flag@flag.example/app", "--querywarden-baselines", "elsewhere",
        "--querywarden-hot-calls-per-minute", "500", "--querywarden-update", "-o", "querywarden_scale=2",
    )
    result.stdout.fnmatch_lines(
        [
            "querywarden: database postgresql://flag@flag.example/app (from --querywarden-dsn)",
            "querywarden: baselines elsewhere (from --querywarden-baselines); updating baselines",
            "*at scale 2 (from -o querywarden_scale)",
            "*hot from 500 (from --querywarden-hot-calls-per-minute)",
        ]
    )
    assert "env-secret" not in result.stdout.str()


def test_defaults_and_the_project_table_fill_what_the_ini_leaves_open(pytester: pytest.Pytester) -> None:
    pytester.makepyprojecttoml(
        """
        [tool.pytest.ini_options]
        addopts = "-p no:cacheprovider -p no:hypothesispytest -p no:benchmark -p no:django -p no:asyncio"

        [tool.querywarden]
        schema = ["db/schema.sql"]
        seed = ["db/data.sql"]
        scale = 0.5
        default-calls-per-minute = 120
        hot-calls-per-minute = 2000
        """
    )
    result = pytester.runpytest("--co")
    result.stdout.fnmatch_lines(
        [
            "querywarden: database an embedded throwaway cluster, started on first use (no --querywarden-dsn, "
            "$QUERYWARDEN_DSN or querywarden_dsn)",
            "querywarden: baselines baselines/tests (from default)",
            "querywarden: seed schema db/schema.sql (from [tool.querywarden] in pyproject.toml), data db/data.sql "
            "(from [tool.querywarden] in pyproject.toml) at scale 0.5 (from [tool.querywarden] in pyproject.toml)",
            "querywarden: default rate 120 calls/min (from [tool.querywarden] in pyproject.toml), "
            "hot from 2000 (from [tool.querywarden] in pyproject.toml)",
        ]
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--querywarden-scale", "zero"], "querywarden: the seed scale from --querywarden-scale must be a positive number, not 'zero'"),
        (["--querywarden-calls-per-minute", "-5"], "querywarden: the default call rate from --querywarden-calls-per-minute must be a positive number, not '-5'"),
    ],
)
def test_unusable_settings_stop_the_run_as_usage_errors(pytester: pytest.Pytester, args: list[str], message: str) -> None:
    result = pytester.runpytest(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: {message}"])


def test_marker_mistakes_fail_the_test_that_has_them(pytester: pytest.Pytester) -> None:
    pytester.makefile(".ini", pytest=f"[pytest]\naddopts = {INNER_ADDOPTS}\nquerywarden_baselines = baselines\n")
    pytester.makepyfile(
        test_marks=textwrap.dedent(
            """
            import pytest

            @pytest.mark.hot_path(calls_per_minute=0)
            def test_zero(querywarden):
                pass

            @pytest.mark.hot_path(rate=5)
            def test_unknown(querywarden):
                pass

            @pytest.mark.hot_path(calls_per_minute=100)
            def test_without_the_fixture():
                pass

            @pytest.mark.hot_path(250)
            def test_positional_rate(querywarden):
                assert querywarden.calls_per_minute == 250 and querywarden.marked

            def test_unmarked_uses_the_default_rate(querywarden):
                assert (querywarden.calls_per_minute, querywarden.marked) == (60, False)
            """
        )
    )
    result = pytester.runpytest("-p", "no:xdist")
    result.assert_outcomes(failed=3, errors=2)  # a bad marker fails the querywarden fixture's setup
    result.stdout.fnmatch_lines(
        [
            "querywarden: test_marks.py::test_zero: hot_path calls_per_minute must be a positive number, not 0",
            "*",
            "querywarden: test_marks.py::test_unknown: hot_path: unknown argument(s) rate; use "
            "@pytest.mark.hot_path(calls_per_minute=12000) or hot_path(calls_per_minute=N, budget_ms=M)",
        ]
    )
    result.stdout.fnmatch_lines(
        [
            "querywarden: test_marks.py::test_without_the_fixture is marked hot_path but does not use the querywarden "
            "fixture, so nothing of its path is captured; add the fixture and wrap the code in querywarden.capture(...)",
        ]
    )
    # A guarded test that captured nothing still needs a baseline: it says so instead of passing silently.
    result.stdout.fnmatch_lines(["querywarden: test_marks.py::test_positional_rate (250 calls/min, 0 statements) has no baseline *"])


def test_a_corrupt_baseline_fails_its_test_naming_the_file(pytester: pytest.Pytester) -> None:
    pytester.makefile(".ini", pytest=f"[pytest]\naddopts = {INNER_ADDOPTS}\nquerywarden_baselines = baselines\n")
    pytester.makepyfile(test_one="def test_one(querywarden):\n    pass\n")
    (pytester.path / "baselines").mkdir()
    (pytester.path / "baselines" / "test_one.py_test_one.json").write_text("{ not json")
    result = pytester.runpytest()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["querywarden: */baselines/test_one.py_test_one.json: not valid JSON *; restore it from git or re-run with --querywarden-update"])
    result.stdout.fnmatch_lines(["unreadable baseline: */baselines/test_one.py_test_one.json: not valid JSON*"])
