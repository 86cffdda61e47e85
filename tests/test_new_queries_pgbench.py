"""New queries judged at production rates on a database querywarden did not seed: pgbench's own
schema at scale 1, where pgbench_accounts (100,000 rows, ~1,640 blocks) is over the large-relation
threshold. A hot unindexed lookup blocks and is refused until accepted; a hot primary-key lookup and
a rare full aggregate pass and are recorded."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner, Result
from psycopg.conninfo import conninfo_to_dict

from querywarden.cli import main

HEAVY_HOT = """
-- name: accounts_by_balance
-- calls-per-minute: 20000
-- params: {"b": 12345}
SELECT aid, abalance FROM pgbench_accounts WHERE abalance = %(b)s;
"""
CHEAP_HOT = """
-- name: balance_of_an_account
-- calls-per-minute: 20000
-- params: {"aid": 4242}
SELECT abalance FROM pgbench_accounts WHERE aid = %(aid)s;
"""
HEAVY_RARE = """
-- name: balance_per_branch
-- calls-per-minute: 2
SELECT bid, sum(abalance) FROM pgbench_accounts GROUP BY bid;
"""


@pytest.fixture(autouse=True)
def outside_the_repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)


def invoke(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def verdicts(results: Path) -> dict[str, tuple[str, bool]]:
    return {q["name"]: (q["verdict"], q["blocking"]) for q in json.loads(results.read_text())["queries"]}


def find_pgbench() -> str:
    found = shutil.which("pgbench")
    if found:
        return found
    tried = ["pgbench on PATH"]
    pg_config = shutil.which("pg_config")
    if pg_config:
        bindir = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=True).stdout.strip()
        for candidate in (Path(bindir) / "pgbench", Path("/usr/lib/postgresql") / Path(bindir).parent.name / "bin" / "pgbench"):
            if candidate.is_file():
                return str(candidate)
            tried.append(str(candidate))
    pytest.fail(f"this test needs pgbench (tried {', '.join(tried)}); install postgresql-contrib or "
                "the PostgreSQL server binaries", pytrace=False)


@pytest.fixture
def pgbench_db(scratch_db: str) -> str:
    """A scratch database initialised by `pgbench -i -s 1 -q` and analysed."""
    params = conninfo_to_dict(scratch_db)
    command = [find_pgbench(), "-i", "-s", "1", "-q"]
    for flag, key in (("-h", "host"), ("-p", "port"), ("-U", "user")):
        if params.get(key):
            command += [flag, str(params[key])]
    command.append(str(params["dbname"]))
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"{' '.join(command)} failed:\n{done.stdout}{done.stderr}"
    with psycopg.connect(scratch_db, autocommit=True) as conn:
        conn.execute("ANALYZE")
        (rows,) = conn.execute("SELECT count(*) FROM pgbench_accounts").fetchone()
        (blocks,) = conn.execute("SELECT pg_relation_size('pgbench_accounts') / current_setting('block_size')::int").fetchone()
    assert rows == 100_000
    assert blocks > 1_000, f"pgbench_accounts has {blocks} blocks, under the large-relation threshold"
    return scratch_db


def test_a_new_hot_seq_scan_on_pgbench_is_blocked_and_refused_until_accepted(pgbench_db: str, tmp_path: Path) -> None:
    catalog = tmp_path / "new.sql"
    catalog.write_text(HEAVY_HOT + CHEAP_HOT + HEAVY_RARE, encoding="utf-8")
    baselines = tmp_path / "baselines"
    common = ("--catalog", str(catalog), "--baselines", str(baselines), "--dsn", pgbench_db)

    checked = invoke("check", *common, "--json", str(tmp_path / "r.json"))
    assert checked.exit_code == 1, checked.output
    assert verdicts(tmp_path / "r.json") == {
        "accounts_by_balance": ("new", True),
        "balance_of_an_account": ("new", False),
        "balance_per_branch": ("new", False),
    }
    assert "new, and too costly to record: " in checked.output
    assert "cores of a 16-core database (budget 0.5 cores a query)" in checked.output
    assert "hot: Seq Scan on pgbench_accounts (" in checked.output
    print(checked.output)  # the figures the heavy query showed, for `pytest -s`

    # Recording refuses the heavy one, names it, and records the others.
    updated = invoke("update", *common)
    assert updated.exit_code == 1, updated.output
    assert "refused    accounts_by_balance" in updated.output
    assert "querywarden: not recorded: accounts_by_balance;" in updated.stderr
    assert sorted(p.name for p in baselines.iterdir()) == ["balance_of_an_account.json", "balance_per_branch.json"]

    # An explicit acceptance records it, with its reason in the file.
    reason = "balance lookups get an index next release; reviewed by the DBA"
    accepted = invoke("update", *common, "--accept", f"accounts_by_balance={reason}")
    assert accepted.exit_code == 0, accepted.output
    assert json.loads((baselines / "accounts_by_balance.json").read_text())["query"]["accepted"] == reason
    assert "accepted" not in json.loads((baselines / "balance_of_an_account.json").read_text())["query"]

    again = invoke("check", *common, "--json", str(tmp_path / "again.json"))
    assert again.exit_code == 0, again.output
    noted = {q["name"]: q["reasons"] for q in json.loads((tmp_path / "again.json").read_text())["queries"]}
    assert f"recorded over the budget, accepted: {reason}" in noted["accounts_by_balance"]
