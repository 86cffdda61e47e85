"""The README's main job: `querywarden demo` on the embedded default, exactly as `make demo` runs it."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from querywarden.cli import main

from conftest import REPO


def test_demo_on_the_embedded_cluster_passes_then_blocks_the_bad_change(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("QUERYWARDEN_DSN", raising=False)
    monkeypatch.chdir(REPO)
    result = CliRunner().invoke(main, ["demo"], catch_exceptions=False)
    assert "starting an embedded PostgreSQL cluster" in result.stderr
    assert result.exit_code == 0, result.output + result.stderr
    step_two, step_three = result.stdout.split("== 3.")
    assert "querywarden: passed: 9 queries" in step_two
    assert "FAIL                   running_timer" in step_three
    assert "Index Scan using time_entries_running_timer_idx on time_entries became Seq Scan" in step_three
    assert "querywarden: BLOCKED: 1 of 9 queries block" in step_three
    assert result.stdout.rstrip().endswith("the bad change was blocked before merge, as it should be.")
