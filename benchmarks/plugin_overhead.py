"""Wall time the pytest plugin adds per guarded test beyond measuring its statements.

    .venv/bin/python benchmarks/plugin_overhead.py [--dsn DSN] [--rounds 3] [--workers 2] [--scale 0.1]

Copies the time-tracker's test suite (examples/timetracker: app.py, app_orm.py, tests/) into a
temporary project, records its baselines once, then runs it `--rounds` times each way, alternating:

- with the plugin: the seeded template cloned once per process, each test in a transaction rolled
  back after it, its code path captured and every statement measured and compared with the baseline;
- without it (`-p no:querywarden`): stand-in fixtures (benchmarks/plugin_off.py) give the suite what
  its own fixtures would: one copy of the same seeded database, each test in a rolled-back
  transaction, statements captured (the tests assert on them) and nothing measured.

The time spent running statements to measure them (`measure`, `replay_against`; added up by
benchmarks/plugin_timing.py) is what a guard must spend; everything else the plugin adds is its
overhead. Prints the medians and that overhead per guarded test. `--scale 2` seeds about 500 MB.
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


def make_project(root: Path, dsn: str, scale: float, copies: int) -> None:
    for name in ("app.py", "app_orm.py", "schema.sql", "seed.sql"):
        shutil.copy(EXAMPLE / name, root / name)
    shutil.copytree(EXAMPLE / "tests", root / "tests", ignore=shutil.ignore_patterns("__pycache__"))
    for copy in range(2, copies + 1):  # more guarded tests, so what a run costs once is spread thin
        shutil.copy(root / "tests" / "test_hot_paths.py", root / "tests" / f"test_hot_paths_{copy}.py")
    (root / "pytest.ini").write_text(
        "[pytest]\n"
        "testpaths = tests\n"
        "pythonpath = .\n"
        "addopts = -p no:cacheprovider -p no:hypothesispytest -p no:benchmark -p no:asyncio -p no:django\n"
        f"querywarden_dsn = {dsn}\n"
        "querywarden_schema = schema.sql\n"
        "querywarden_seed = seed.sql\n"
        f"querywarden_scale = {scale}\n"
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
    parser.add_argument("--copies", type=int, default=5, help="copies of the example's test module (6 guarded tests each)")
    parser.add_argument("--scale", type=float, default=0.1, help="seed scale (0.1: the example's, ~25 MB; 2: ~500 MB)")
    options = parser.parse_args()

    server = Server(options.dsn)
    template = ensure_template(server, Seed(("seed.sql",), options.scale, EXAMPLE, schema=("schema.sql",)))
    with server.admin() as admin:
        size = admin.execute("SELECT pg_size_pretty(pg_database_size(%s))", (template,)).fetchone()
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
        make_project(root, options.dsn, options.scale, options.copies)
        measured_file = root / "measured.txt"
        env["QW_BENCH_MEASURED_FILE"] = str(measured_file)
        _, recorded = run(root, ["--querywarden-update", *xdist], env)
        tests = len(list((root / "baselines").glob("*.json")))
        print(f"suite: examples/timetracker tests ({tests} guarded tests), template {template} "
              f"(scale {options.scale:g}, {size[0] if size else '?'}), {mask_dsn(options.dsn)}")
        print(f"baselines recorded: {recorded}")
        with_plugin: list[float] = []
        measuring: list[float] = []
        without: list[float] = []
        for round_number in range(1, options.rounds + 1):
            measured_file.write_text("")
            seconds, summary = run(root, ["-p", "plugin_timing", *xdist], env)
            spent = sum(float(line) for line in measured_file.read_text().split())
            with_plugin.append(seconds)
            measuring.append(spent)
            print(f"  round {round_number} with the plugin:    {seconds:6.2f} s, {spent:5.2f} s of it measuring  ({summary})")
            seconds, summary = run(root, ["-p", "no:querywarden", "-p", "plugin_off", *xdist], env)
            without.append(seconds)
            print(f"  round {round_number} without the plugin: {seconds:6.2f} s  ({summary})")
    on, off, spent = statistics.median(with_plugin), statistics.median(without), statistics.median(measuring)
    mode = f" under xdist -n {options.workers}" if options.workers else ""
    per_test = (on - off) / tests
    print(f"median wall time{mode}: {on:.2f} s with the plugin ({spent:.2f} s of it measuring statements), {off:.2f} s without")
    print(f"added by the plugin: {on - off:.2f} s for {tests} guarded tests = {per_test * 1000:.0f} ms per guarded test, "
          f"{(per_test - spent / tests) * 1000:.0f} ms of it beyond measuring")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
