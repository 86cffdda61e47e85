"""The notebook's aiosql files as querywarden's catalog, unchanged: aiosql and querywarden read
the same queries, and `querywarden check` passes the committed baselines in baselines/notebook/.

The CLI measures on $QUERYWARDEN_DSN when that is set, else on an embedded throwaway cluster.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

import app
from querywarden.catalog import read_catalogs
from querywarden.cli import main

HERE = Path(__file__).resolve().parents[1]
BASELINES = HERE.parents[1] / "baselines" / "notebook"
SEED = ["--schema", str(HERE / "schema.sql"), "--seed", str(HERE / "seed.sql")]
GUARDED = {
    "recent_notes[typical]", "recent_notes[big]", "get_note", "count_notes[1]", "count_notes[2]", "search_titles",
    "add_note", "archive_note", "tags.notes_tagged[typical]", "tags.notes_tagged[big]",
}


def check(tmp_path: Path, *extra: str) -> tuple[Result, dict[str, dict[str, object]]]:
    results = tmp_path / "results.json"
    result = CliRunner().invoke(
        main, ["check", "--catalog", str(app.SQL), "--baselines", str(BASELINES), "--json", str(results), *SEED, *extra],
        catch_exceptions=False,
    )
    assert result.exit_code in (0, 1), result.output + result.stderr
    return result, {q["name"]: q for q in json.loads(results.read_text())["queries"]}


@pytest.fixture(autouse=True)
def outside_the_repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No pyproject.toml supplies settings: the command line says everything."""
    monkeypatch.chdir(tmp_path)


def test_aiosql_and_querywarden_read_the_same_queries() -> None:
    catalog = read_catalogs([app.SQL])
    aiosql_names = {name for name in app.queries.available_queries if not name.endswith("_cursor")}
    assert {query.name for query in catalog.queries} == GUARDED
    guarded = {query.name.partition("[")[0] for query in catalog.queries}
    skipped = {item.name for item in catalog.skipped}
    assert guarded | skipped == aiosql_names
    assert skipped == {"import_notes", "refresh_statistics", "tags.tag_names"}
    # each parameter set is a query of its own, the rate split between the sets
    rates = {query.name: query.calls_per_minute for query in catalog.queries}
    assert rates["recent_notes[typical]"] == rates["recent_notes[big]"] == 4500
    assert rates["count_notes[1]"] == rates["count_notes[2]"] == 300
    # what querywarden measures is what aiosql runs, `:name` turned into `%(name)s` the same way
    for query in catalog.queries:
        function = app.queries
        for part in query.name.partition("[")[0].split("."):
            function = getattr(function, part)
        assert function.sql.rstrip().rstrip(";") == query.sql, query.name


def test_the_aiosql_files_pass_their_committed_baselines(tmp_path: Path) -> None:
    result, found = check(tmp_path)
    assert result.exit_code == 0, result.output
    assert set(found) == GUARDED
    assert len(list(BASELINES.glob("*.json"))) == len(GUARDED)  # one baseline file each
    for name, query in found.items():
        # same plan and work as recorded; timing alone may drift to a non-blocking warn on a busy machine
        assert query["verdict"] == "pass" or (query["verdict"] == "warn" and str(query["reasons"][0]).startswith("median ")), (
            name, query["verdict"], query["reasons"])
    for skipped in ("import_notes", "refresh_statistics", "tags.tag_names"):
        assert f"skipped    {skipped}  (" in result.output


def test_dropping_the_note_list_index_blocks_the_big_tenant(tmp_path: Path) -> None:
    migration = tmp_path / "drop_index.sql"
    migration.write_text("DROP INDEX notes_tenant_recent_idx;\n")
    result, found = check(tmp_path, "--schema", str(migration))
    assert result.exit_code == 1, result.output
    assert found["recent_notes[big]"]["verdict"] == "fail"
    assert "querywarden: BLOCKED" in result.output
