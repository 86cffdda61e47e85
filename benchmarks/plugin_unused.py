"""What the installed plugin costs a suite that does not use querywarden.

    .venv/bin/python benchmarks/plugin_unused.py [--rounds 15]

Runs a one-test suite in a fresh directory (no querywarden settings, no pyproject.toml, an unrelated
`baselines/tests/api_response.json`) `--rounds` times each way, alternating: as installed, with
querywarden's plugin disabled (`-p no:querywarden`), and with pytest-postgresql's disabled as well
(querywarden depends on it, so it is installed with it). Prints the median wall times, what
querywarden's own plugin adds, and whether the run showed a querywarden header or failed.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

WAYS = {
    "as installed": [],
    "-p no:querywarden": ["-p", "no:querywarden"],
    "-p no:querywarden -p no:postgresql": ["-p", "no:querywarden", "-p", "no:postgresql"],
}


def run(root: Path, extra: list[str]) -> tuple[float, subprocess.CompletedProcess[str]]:
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *extra], cwd=root, capture_output=True, text=True
    )
    return time.perf_counter() - started, done


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=15)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="qw_unused_") as tmp:
        root = Path(tmp)
        (root / "test_trivial.py").write_text("def test_one():\n    assert 1 + 1 == 2\n")
        (root / "baselines" / "tests").mkdir(parents=True)
        (root / "baselines" / "tests" / "api_response.json").write_text('{"status": "ok"}\n')
        times: dict[str, list[float]] = {way: [] for way in WAYS}
        for _ in range(options.rounds):
            for way, extra in WAYS.items():
                seconds, done = run(root, extra)
                if done.returncode != 0:
                    raise SystemExit(f"pytest {way} exited {done.returncode}:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
                if way == "as installed" and "querywarden:" in done.stdout:
                    raise SystemExit(f"the unused plugin said something:\n{done.stdout}")
                times[way].append(seconds)
    medians = {way: statistics.median(found) for way, found in times.items()}
    for way, median in medians.items():
        print(f"median of {options.rounds} runs, {way:36s} {median * 1000:7.0f} ms")
    own = medians["as installed"] - medians["-p no:querywarden"]
    both = medians["as installed"] - medians["-p no:querywarden -p no:postgresql"]
    print(f"querywarden's plugin adds {own * 1000:.0f} ms; with pytest-postgresql's (a dependency) {both * 1000:.0f} ms")
    print("no querywarden header, exit 0 with an unrelated baselines/tests/api_response.json")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
