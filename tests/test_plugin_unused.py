"""Installed but unused, the plugin says nothing, loads nothing and reads no file; switched off, its
fixtures work and nothing is measured; `[tool.querywarden] baselines` is where its files go.
Real pytest sessions (pytester) against the real PostgreSQL."""

from __future__ import annotations

import textwrap

import pytest

from test_plugin import INNER_ADDOPTS
from test_plugin_transactions import DATA, SCHEMA

pytest_plugins = ["pytester"]

UNRELATED = """\
    import sys


    def test_nothing_of_querywarden_is_loaded():
        heavy = sorted(name for name in sys.modules if name == "sqlglot" or name.startswith(("querywarden.engine",
                       "querywarden.judge", "querywarden.baseline", "querywarden.database", "querywarden.seeding", "querywarden.config")))
        assert heavy == []
    """


def test_an_unrelated_suite_sees_no_header_and_its_baselines_directory_is_not_read(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_unrelated=textwrap.dedent(UNRELATED))
    (pytester.path / "baselines" / "tests").mkdir(parents=True)
    (pytester.path / "baselines" / "tests" / "api_response.json").write_text('{"status": "ok"}\n')
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:django", "-p", "no:asyncio")
    result.assert_outcomes(passed=1)
    assert result.ret == 0
    assert "querywarden:" not in result.stdout.str()


GUARDED = """\
    import pytest


    @pytest.mark.hot_path(calls_per_minute=3000)
    def test_guarded(querywarden, querywarden_db):
        with querywarden.capture(querywarden_db) as captured:
            querywarden_db.execute("SELECT id FROM notes WHERE owner = %s", (7,)).fetchall()
        assert len(captured) == 1


    @pytest.mark.hot_path(calls_per_minute=3000)
    def test_marked_without_the_fixture():
        pass
    """


def _project(pytester: pytest.Pytester, dsn: str, baselines: str | None = "baselines") -> None:
    (pytester.path / "schema.sql").write_text(SCHEMA)
    (pytester.path / "data.sql").write_text(DATA)
    pytester.makepyfile(test_paths=textwrap.dedent(GUARDED))
    lines = [f"addopts = {INNER_ADDOPTS}", f"querywarden_dsn = {dsn}", "querywarden_schema = schema.sql",
             "querywarden_seed = data.sql"] + ([f"querywarden_baselines = {baselines}"] if baselines else [])
    (pytester.path / "pytest.ini").write_text("[pytest]\n" + "\n".join(lines) + "\n")


@pytest.mark.parametrize("how", ["flag", "environment"])
def test_switched_off_the_fixtures_work_and_nothing_is_measured(
    pytester: pytest.Pytester, pg_dsn: str, how: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _project(pytester, pg_dsn)
    args = ["--querywarden-off"] if how == "flag" else []
    if how == "environment":
        monkeypatch.setenv("QUERYWARDEN_OFF", "1")
    result = pytester.runpytest(*args)
    result.assert_outcomes(passed=2)  # no baseline needed, and a marker without the fixture is not an error
    result.stdout.fnmatch_lines(["querywarden: off (*): the fixtures work, nothing is measured"])
    assert "guarded tests" not in result.stdout.str()
    assert not (pytester.path / "baselines").exists()


def test_switched_off_there_is_nothing_to_record(pytester: pytest.Pytester, pg_dsn: str) -> None:
    _project(pytester, pg_dsn)
    result = pytester.runpytest("--querywarden-off", "--querywarden-update")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--querywarden-update records what it measures, and --querywarden-off*measures nothing*"])


def test_the_baselines_of_tool_querywarden_hold_the_plugin_s_files_under_tests(pytester: pytest.Pytester, pg_dsn: str) -> None:
    _project(pytester, pg_dsn, baselines=None)
    (pytester.path / "pyproject.toml").write_text('[tool.querywarden]\nbaselines = "qw-baselines"\n')
    (pytester.path / "test_paths.py").write_text(textwrap.dedent(GUARDED).split("\n\n\n@pytest.mark.hot_path(calls_per_minute=3000)\ndef test_marked")[0])
    result = pytester.runpytest("--querywarden-update")
    result.assert_outcomes(passed=1)
    assert "querywarden: baselines qw-baselines/tests (from `baselines` of [tool.querywarden] in pyproject.toml, its tests/)" in result.stdout.str()
    assert [p.name for p in (pytester.path / "qw-baselines" / "tests").iterdir()] == ["test_paths.py_test_guarded.json"]
