"""What a baseline records about its data and environment, through the CLI end to end.

A baseline taken on the example at scale 0.1 records the seed's data fingerprint, the PostgreSQL
major version and the planner settings pinned in [tool.querywarden.settings]. Checking it on the
same seed at another scale is `incomparable` (exit 1, asking for a refresh); checking it with another
pinned setting is a pass that reports the drift.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from querywarden.cli import main
from querywarden.database import Server
from querywarden.measure import ENVIRONMENT_SETTINGS
from querywarden.seeding.seed import Seed, drop_template, template_name

from conftest import EXAMPLE

CATALOG = """\
-- name: running_timer
-- calls-per-minute: 20000
-- params: {"user_id": 1187}
SELECT id, project_id, description, started_at
FROM time_entries
WHERE user_id = %(user_id)s AND stopped_at IS NULL;
"""

PYPROJECT = """\
[tool.querywarden]
catalog = ["queries.sql"]
baselines = "baselines"
schema = ["schema.sql"]
seed = ["seed.sql"]
scale = 0.1
min-samples = 3
max-samples = 5
time-floor-ms = 60000  # timing never decides here: this test is about seed and settings, not speed

[tool.querywarden.settings]
work_mem = "{work_mem}"
"""
OTHER_SCALE = 0.06  # queries.sql's parameters hit real rows from 0.06 up


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, server: Server, example_template: str) -> Iterator[Path]:
    """A project guarding the example's running_timer; the seed files are the example's own bytes, so
    scale 0.1 reuses the session's template. The template built at OTHER_SCALE is dropped after."""
    for name in ("schema.sql", "seed.sql"):
        shutil.copyfile(EXAMPLE / name, tmp_path / name)
    (tmp_path / "queries.sql").write_text(CATALOG, encoding="utf-8")
    (tmp_path / "pyproject.toml").write_text(PYPROJECT.replace("{work_mem}", "8MB"), encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    other = template_name(Seed(("seed.sql",), OTHER_SCALE, tmp_path, schema=("schema.sql",)))
    drop_template(server, other)  # left by an interrupted run: this test must see it built
    yield tmp_path
    drop_template(server, other)


def run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_a_baseline_records_seed_version_and_settings_and_flags_what_differs(
    project: Path, pg_dsn: str, example_seed: Seed, example_template: str
) -> None:
    assert template_name(Seed(("seed.sql",), 0.1, project, schema=("schema.sql",))) == example_template

    updated = run("update", "--dsn", pg_dsn)
    assert updated.exit_code == 0, updated.output
    baseline = json.loads((project / "baselines" / "running_timer.json").read_text(encoding="utf-8"))
    environment = baseline["query"]["environment"]
    assert environment["seed"] == example_seed.data_fingerprint()
    assert environment["postgres_major"] == "15"
    assert environment["work_mem"] == "8MB"  # pinned from [tool.querywarden.settings]
    assert environment["jit"] == "off" and environment["max_parallel_workers_per_gather"] == "0"
    assert set(ENVIRONMENT_SETTINGS) <= set(environment)

    same = run("check", "--dsn", pg_dsn)
    assert same.exit_code == 0, same.output

    other_scale = run("check", "--dsn", pg_dsn, "--scale", str(OTHER_SCALE))
    assert other_scale.exit_code == 1, other_scale.output
    other_seed = Seed(("seed.sql",), OTHER_SCALE, project, schema=("schema.sql",)).data_fingerprint()
    assert f"seed {example_seed.data_fingerprint()} → {other_seed}" in other_scale.output
    assert "INCOMPARABLE (blocks)" in other_scale.output
    assert "refresh it with `querywarden update`" in other_scale.output
    # the other scale was seeded on the way, with progress on stderr
    assert f"seeding {template_name(Seed(('seed.sql',), OTHER_SCALE, project, schema=('schema.sql',)))} (scale 0.06)" in other_scale.stderr
    assert re.search(r"^  seed\.sql \[\d+/\d+\] INSERT INTO time_entries: [\d,]+ rows in [\d.]+ s \([\d,]+ rows/s\)$", other_scale.stderr, re.M)
    assert re.search(r"^seeded [\d,]+ rows in .* analyzed in .*; autovacuum off on 7 tables$", other_scale.stderr, re.M)

    (project / "pyproject.toml").write_text(PYPROJECT.replace("{work_mem}", "16MB"), encoding="utf-8")
    drifted = run("check", "--dsn", pg_dsn, "--json", "results.json")
    assert drifted.exit_code == 0, drifted.output
    results = json.loads((project / "results.json").read_text(encoding="utf-8"))
    (query,) = [q for q in results["queries"] if q["name"] == "running_timer"]
    assert query["verdict"] == "pass"
    assert "environment drift: work_mem 8MB → 16MB" in query["reasons"]
