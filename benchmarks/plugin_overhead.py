"""Wall time the pytest plugin adds per guarded test, next to the same suite without it.

    .venv/bin/python benchmarks/plugin_overhead.py [--dsn DSN] [--rounds 3] [--workers 2]

Copies the time-tracker's test suite (examples/timetracker: app.py, app_orm.py, tests/) into a
temporary project, records its baselines once, then runs it `--rounds` times each way, alternating:

- with the plugin: each test gets a fresh clone of the seeded template, its code path is captured,
  and after the test every statement is measured and compared with the baseline;
- without it (`-p no:querywarden`): stand-in fixtures (benchmarks/plugin_off.py) give each test the
  same fresh clone of the same template, and capture statements (the tests assert on them) but
  measure and compare nothing. That is what the suite costs anyway with per-test databases.

Prints the median wall time of each and the difference per guarded test. Pass --workers 2 to run
both ways under pytest-xdist.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from querywarden.database import DSN_ENV, mask_dsn
from querywarden.seeding.seed import Seed, ensure_template
from querywarden.database import Server

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "timetracker"
DEFAULT_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"
SCALE = 0.1


def make_project(root: Path, dsn: str) -> None:
    for name in ("app.py", "app_orm.py", "schema.sql", "seed.sql"):
        shutil.copy(EXAMPLE / name, root / name)
    shutil.copytree(EXAMPLE / "tests", root / "tests", ignore=shutil.ignore_patterns("__pycache__"))
    (root / "pytest.ini").write_text(
        "[pytest]\n"
        "testpaths = tests\n"
        "pythonpath = .\n"
        "addopts = -p no:cacheprovider -p no:hypothesispytest -p no:benchmark\n"
        f"querywarden_dsn = {dsn}\n"
        "querywarden_schema = schema.sql\n"
        "querywarden_seed = seed.sql\n"
        f"querywarden_scale = {SCALE}\n"
        "querywarden_baselines = baselines\n"
    )


def run(root: Path, args: list[str], env: dict[str, str]) -> tuple[float, str]:
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", *args], cwd=root, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    last = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else done.stderr.strip()[-200:]
    if done.returncode != 0:
        raise SystemExit(f"pytest {' '.join(args)} failed (exit {done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-2000:]}")
    return elapsed, last


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dsn", default=os.environ.get(DSN_ENV, DEFAULT_DSN))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=0, help="run under pytest-xdist with this many workers")
    options = parser.parse_args()

    server = Server(options.dsn)
    template = ensure_template(server, Seed(("seed.sql",), SCALE, EXAMPLE, schema=("schema.sql",)))
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO / "benchmarks"), os.environ.get("PYTHONPATH", "")]),
        "QW_BENCH_DSN": options.dsn,
        "QW_BENCH_TEMPLATE": template,
    }
    env.pop(DSN_ENV, None)
    xdist = ["-n", str(options.workers)] if options.workers else []
    with tempfile.TemporaryDirectory(prefix="qw_plugin_overhead_") as tmp:
        root = Path(tmp)
        make_project(root, options.dsn)
        _, recorded = run(root, ["--querywarden-update", *xdist], env)
        tests = len(list((root / "baselines").glob("*.json")))
        print(f"suite: examples/timetracker tests ({tests} guarded tests), template {template}, {mask_dsn(options.dsn)}")
        print(f"baselines recorded: {recorded}")
        with_plugin: list[float] = []
        without: list[float] = []
        for round_number in range(1, options.rounds + 1):
            seconds, summary = run(root, [*xdist], env)
            with_plugin.append(seconds)
            print(f"  round {round_number} with the plugin:    {seconds:6.2f} s  ({summary})")
            seconds, summary = run(root, ["-p", "no:querywarden", "-p", "plugin_off", *xdist], env)
            without.append(seconds)
            print(f"  round {round_number} without the plugin: {seconds:6.2f} s  ({summary})")
    on, off = statistics.median(with_plugin), statistics.median(without)
    mode = f" under xdist -n {options.workers}" if options.workers else ""
    print(f"median wall time{mode}: {on:.2f} s with the plugin, {off:.2f} s without")
    print(f"added by the plugin: {on - off:.2f} s for {tests} guarded tests = {(on - off) / tests:.2f} s per guarded test")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
