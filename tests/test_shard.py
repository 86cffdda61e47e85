"""`--shard I/N`: a catalog split across CI matrix jobs, each shard measured on its own, the shards'
results merged by `querywarden report` into one verdict; on the time-tracker example and a real PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from querywarden.catalog import load_catalogs
from querywarden.cli import main

from conftest import EXAMPLE

CATALOG = EXAMPLE / "queries.sql"
SEED_ARGS = ["--schema", str(EXAMPLE / "schema.sql"), "--seed", str(EXAMPLE / "seed.sql"), "--scale", "0.1"]


def invoke(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


@pytest.fixture(autouse=True)
def outside_the_repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pg_dsn: str) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("QUERYWARDEN_DSN", pg_dsn)


def test_three_shards_measure_the_catalog_once_and_merge_into_one_verdict(tmp_path: Path) -> None:
    names = {q.name for q in load_catalogs([CATALOG])}
    common = ["--catalog", str(CATALOG), "--baselines", "baselines", *SEED_ARGS]
    seen: list[set[str]] = []
    for index in (1, 2, 3):
        recorded = invoke("update", *common, "--shard", f"{index}/3")
        assert recorded.exit_code == 0, recorded.output
        result = invoke("check", *common, "--shard", f"{index}/3", "--json", f"shard{index}.json")
        assert result.exit_code == 0, result.output
        queries = json.loads((tmp_path / f"shard{index}.json").read_text())["queries"]
        assert not any(q["verdict"] == "missing" for q in queries)  # the other shards' baselines are theirs
        seen.append({q["name"] for q in queries})
    assert set.union(*seen) == names
    assert sum(len(part) for part in seen) == len(names)  # each query in exactly one shard
    assert len(list((tmp_path / "baselines").glob("*.json"))) == len(names)
    merged = invoke("report", "--from", "shard1.json", "--from", "shard2.json", "--from", "shard3.json",
                    "--format", "json", "--output", "merged.json")
    assert merged.exit_code == 0, merged.output
    document = json.loads((tmp_path / "merged.json").read_text())
    assert {q["name"] for q in document["queries"]} == names


def test_a_shard_that_is_not_i_of_n_is_a_usage_error() -> None:
    for bad in ("0/3", "4/3", "two/3", "3"):
        result = CliRunner().invoke(main, ["check", "--catalog", str(CATALOG), "--shard", bad])
        assert result.exit_code == 2
        assert "is not I/N with 1 <= I <= N" in result.output


def test_merged_shards_judge_the_change_budget_on_the_whole_change(tmp_path: Path) -> None:
    """Three new queries in three shards, each under the change budget alone, together over it."""
    from querywarden.judge import CHANGE, compare
    from querywarden.policy import Policy
    from querywarden.reports.results import write_results
    from querywarden.verdict import RunResult

    from report_samples import index_plan, observation

    policy = Policy()
    # 0.4 cores each (24 ms at 1,000 calls/min): under 1 core alone, 1.2 together.
    for index in (1, 2, 3):
        new = observation(f"report_{index}", index_plan(), 24.0, calls_per_minute=1000.0)
        result = compare(new.name, None, new, policy)
        assert not result.blocking
        write_results(RunResult((result,)), tmp_path / f"shard{index}.json")
    alone = invoke("report", "--from", "shard1.json", "--format", "json")
    assert alone.exit_code == 0
    merged = invoke("report", "--from", "shard1.json", "--from", "shard2.json", "--from", "shard3.json",
                    "--format", "json", "--output", "merged.json")
    assert merged.exit_code == 1, merged.output
    change = next(q for q in json.loads((tmp_path / "merged.json").read_text())["queries"] if q["name"] == CHANGE)
    assert change["blocking"] is True
    assert "add ≈ 1.2 cores" in change["reasons"][0]
