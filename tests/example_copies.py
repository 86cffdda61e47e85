"""An example project copied with its committed baselines into a temporary directory and run there as
its team runs it: `pytest` in a subprocess, against the real PostgreSQL. Shared by the scenario tests
of examples/helpdesk and examples/bookshop."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

from conftest import REPO
from querywarden.database import Server
from querywarden.seeding.seed import drop_template


@dataclass(frozen=True)
class Run:
    returncode: int
    output: str

    def failed(self) -> set[str]:
        return set(re.findall(r"^FAILED (tests/\S+?\.py::\w+)", self.output, re.MULTILINE))


@dataclass(frozen=True)
class ExampleCopy:
    root: Path  # the copy of examples/<name>
    baselines: Path  # its baselines, at the same relative place as in the repository
    dsn: str

    def env(self) -> dict[str, str]:
        env = {key: value for key, value in os.environ.items() if not key.startswith(("PYTEST_", "QUERYWARDEN_"))}
        env["QUERYWARDEN_DSN"] = self.dsn
        return env

    def run(self, *args: str, own_schema: bool = False) -> Run:
        """A pytest session in the copy; with `own_schema` (a migration only this test has) the template
        it seeded for that schema is dropped afterwards, as no later run will reuse it."""
        done = subprocess.run(
            [sys.executable, "-m", "pytest", "-p", "no:randomly", "-p", "no:xdist", "-rfE", *args],
            cwd=self.root, env=self.env(), capture_output=True, text=True, timeout=600,
        )
        output = done.stdout + done.stderr
        if own_schema:
            for template in re.findall(r"^querywarden: seeding (qw_seed_\w+)", output, re.MULTILINE):
                drop_template(Server(self.dsn), template)
        return Run(done.returncode, output)

    def baseline(self, test: str, module: str = "test_hot_paths.py") -> dict[str, object]:
        return dict(json.loads((self.baselines / f"tests_{module}_{test}.json").read_text()))

    def write(self, relative: str, text: str) -> None:
        (self.root / relative).write_text(textwrap.dedent(text))

    def replace(self, relative: str, old: str, new: str) -> None:
        path = self.root / relative
        text = path.read_text()
        assert old in text, f"{relative} no longer contains {old!r}"
        path.write_text(text.replace(old, new))


def copy_example(tmp_path: Path, name: str, baselines: str, dsn: str) -> tuple[Path, Path]:
    """examples/<name> and baselines/<baselines> copied under `tmp_path`, keeping their relative places."""
    root = tmp_path / "examples" / name
    shutil.copytree(REPO / "examples" / name, root, ignore=shutil.ignore_patterns("__pycache__", ".mypy_cache"))
    shutil.copytree(REPO / "baselines" / baselines, tmp_path / "baselines" / baselines)
    return root, tmp_path / "baselines" / baselines
