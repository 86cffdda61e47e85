"""Lose nothing on disk: a baseline file is always the old text or the new one, never half of either.

Writers are real processes, killed with SIGKILL or interrupted with SIGINT in the middle of a loop of writes,
or racing each other on the same file while this process reads it.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any, Callable

from querywarden.baseline import BaselineStore, file_name

WRITER = textwrap.dedent(
    """
    import sys
    from pathlib import Path

    from querywarden.baseline import BaselineStore, baseline_text
    from querywarden.observation import Observation, Timing
    from querywarden.plan import Buffers, PlanNode


    def build(label, variant, name):
        # Big enough (a quarter of a megabyte) that a write takes a while: a kill lands inside one.
        children = tuple(
            PlanNode(node_type="Seq Scan", relation=f"{label}_table_{i}", total_cost=float(i), plan_rows=1.0,
                     actual_rows=1.0, buffers=Buffers(shared=i), detail=(("Filter", f"(v = {variant})"),))
            for i in range(800)
        )
        return Observation(
            name=name, sql=f"SELECT {label}", normalized_sql=f"SELECT {label}", fingerprint="0" * 16,
            calls_per_minute=float(variant), plan=PlanNode(node_type="Append", children=children),
            timing=Timing.from_samples([1.0, 1.1, 1.2]), environment={"postgres_major": "15"},
        )


    def texts(label):
        return {baseline_text(build(label, v, n)) for v in (1, 2) for n in ("shared_query", f"own_{label}")}


    if __name__ == "__main__":
        directory, label, count = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
        store = BaselineStore(directory)
        variants = [build(label, v, n) for v in (1, 2) for n in ("shared_query", f"own_{label}")]
        i = 0
        while count < 0 or i < count:
            store.write(variants[i % len(variants)])
            if i == 3:
                print("ready", flush=True)
            i += 1
    """
)


def _writer_module() -> dict[str, Any]:
    namespace: dict[str, Any] = {"__name__": "writer"}
    exec(compile(WRITER, "writer", "exec"), namespace)
    return namespace


def start_writer(tmp_path: Path, directory: Path, label: str, count: int) -> subprocess.Popen[str]:
    script = tmp_path / "writer.py"
    if not script.exists():
        script.write_text(WRITER)
    process = subprocess.Popen([sys.executable, str(script), str(directory), label, str(count)],
                               stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    assert process.stdout.readline() == "ready\n"
    return process


def assert_every_file_whole(directory: Path, allowed: set[str]) -> None:
    """Each baseline parses and is exactly one text some writer wrote; stray temp files are not baselines."""
    store = BaselineStore(directory)
    files = sorted(directory.glob("*.json"))
    assert files
    for path in files:
        assert path.read_text() in allowed, f"{path.name} is not a whole baseline"
    assert sorted(store.names()) == sorted(path.stem for path in files)
    for path in directory.iterdir():
        assert path.suffix == ".json" or (path.name.startswith(".") and path.name.endswith(".tmp")), path


def test_killing_a_writer_mid_loop_leaves_whole_files(tmp_path: Path) -> None:
    directory = tmp_path / "baselines"
    allowed: set[str] = _writer_module()["texts"]("a")
    rounds = random.Random(5)
    for _ in range(6):
        writer = start_writer(tmp_path, directory, "a", -1)
        time.sleep(rounds.uniform(0.0, 0.05))  # land the kill at a different point of a write each round
        writer.send_signal(signal.SIGKILL)
        writer.wait()
        assert_every_file_whole(directory, allowed)


def test_interrupting_a_writer_leaves_whole_files_and_no_temp_files(tmp_path: Path) -> None:
    directory = tmp_path / "baselines"
    allowed: set[str] = _writer_module()["texts"]("a")
    writer = start_writer(tmp_path, directory, "a", -1)
    time.sleep(0.02)
    writer.send_signal(signal.SIGINT)
    assert writer.wait() != 0
    assert_every_file_whole(directory, allowed)
    assert sorted(path.name for path in directory.iterdir()) == [file_name("own_a"), file_name("shared_query")]


def test_concurrent_writers_never_clobber_a_file_into_something_neither_wrote(tmp_path: Path) -> None:
    directory = tmp_path / "baselines"
    module = _writer_module()
    texts: Callable[[str], set[str]] = module["texts"]
    allowed = texts("a") | texts("b")
    writers = [start_writer(tmp_path, directory, label, 24) for label in ("a", "b")]
    store = BaselineStore(directory)
    reads = 0
    while any(writer.poll() is None for writer in writers):
        text = store.path_for("shared_query").read_text()
        assert text in allowed, "a reader saw a baseline neither writer wrote"
        assert store.load("shared_query") is not None
        reads += 1
    assert [writer.returncode for writer in writers] == [0, 0]
    assert reads > 0
    assert_every_file_whole(directory, allowed)
    assert sorted(path.name for path in directory.iterdir()) == sorted(
        file_name(name) for name in ("own_a", "own_b", "shared_query")
    )
    assert not any(name.startswith(".") for name in os.listdir(directory))
