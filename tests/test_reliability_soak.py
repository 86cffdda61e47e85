"""Soak: 200 queries in two parallel runs, and the database restarted under them.

Stands in for two pytest-xdist workers (the plugin is not ready): a `check` and an `update` run in parallel,
each over 100 queries, against a throwaway cluster that is restarted once both are measuring. Both must
end with exit 2 and an error naming the query in flight; no baseline file may change or stop parsing; and
the server serves a clean run again afterwards.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
from pathlib import Path

import psycopg

from querywarden.baseline import BaselineStore
from querywarden.embedded import EmbeddedCluster

QUERYWARDEN = Path(sys.executable).with_name("querywarden")
PER_RUN = 100
# Quick timing: this test is about what survives a restart, not about precise medians.
PYPROJECT = "[tool.querywarden]\nmax-samples = 12\ntime-cap-s = 0.3\nwarmup = 1\n"


def catalog(prefix: str) -> str:
    shapes = (
        "SELECT count(*) FROM soak WHERE v BETWEEN {i} AND {i} + 40",
        "SELECT id FROM soak WHERE id = {i}",
        "SELECT sum(id) FROM soak WHERE pad LIKE 'p{i}%'",
        "SELECT v, count(*) FROM soak WHERE id < {i} * 20 GROUP BY v ORDER BY 2 DESC LIMIT 5",
    )
    return "".join(
        f"-- name: {prefix}_{i:03d}\n-- calls-per-minute: {10 + i}\n{shapes[i % len(shapes)].format(i=i + 1)};\n\n"
        for i in range(PER_RUN)
    )


class Run:
    """A CLI run whose stderr is read as it comes, counting the queries it has started measuring."""

    def __init__(self, cwd: Path, *args: str) -> None:
        env = {k: v for k, v in os.environ.items() if k != "QUERYWARDEN_DSN"}
        self.process = subprocess.Popen([str(QUERYWARDEN), *args], cwd=cwd, env=env, text=True,
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.stderr: list[str] = []
        self.measuring = 0
        self.busy = threading.Event()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.stderr.append(line)
            if line.startswith("measuring "):
                self.measuring += 1
                if self.measuring >= 10:
                    self.busy.set()
        self.busy.set()  # ended (perhaps early): never leave the test waiting

    def finish(self) -> tuple[int, str, str]:
        assert self.process.stdout is not None
        stdout = self.process.stdout.read()
        code = self.process.wait(timeout=300)
        self.reader.join()
        return code, stdout, "".join(self.stderr)


def restart(cluster: EmbeddedCluster) -> None:
    """`pg_ctl restart -m fast` through the cluster's wrapper (it runs pg_ctl as the server's OS user)."""
    assert cluster.tempdir is not None
    work = Path(cluster.tempdir) / "cluster"
    subprocess.run([str(Path(cluster.tempdir) / "pg_ctl"), "restart", "-D", str(work / "data"), "-m", "fast", "-w",
                    "-l", str(work / "server.log")], check=True, timeout=120,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def snapshot(directory: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(directory.iterdir())}


def test_two_runs_of_100_queries_survive_a_restart_with_errors_and_whole_files(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(PYPROJECT)
    for prefix in ("a", "b"):
        (tmp_path / f"{prefix}.sql").write_text(catalog(prefix))
    baselines = tmp_path / "baselines"
    cluster = EmbeddedCluster()
    with cluster as admin_dsn:
        with psycopg.connect(admin_dsn, autocommit=True) as conn:
            conn.execute("CREATE DATABASE soak")
        dsn = admin_dsn.rsplit("/", 1)[0] + "/soak"
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("CREATE TABLE soak (id int PRIMARY KEY, v int NOT NULL, pad text NOT NULL)")
            conn.execute("INSERT INTO soak SELECT g, g % 997, 'p' || g FROM generate_series(1, 20000) g")
            conn.execute("CREATE INDEX soak_v_idx ON soak (v)")
            conn.execute("VACUUM ANALYZE soak")

        def run(command: str, prefix: str) -> Run:
            return Run(tmp_path, command, "--catalog", f"{prefix}.sql", "--baselines", str(baselines), "--dsn", dsn)

        # 1. Baselines for all 200 queries, recorded by two runs in parallel.
        recorders = [run("update", "a"), run("update", "b")]
        for recorder in recorders:
            code, stdout, stderr = recorder.finish()
            assert code == 0, stderr
            assert stdout.count("written") == PER_RUN
        recorded = snapshot(baselines)
        assert len(recorded) == 2 * PER_RUN

        # 2. A check and an update in parallel; the server restarts once both are well into their queries.
        runs = [run("check", "a"), run("update", "b")]
        for each in runs:
            assert each.busy.wait(timeout=300)
        assert all(each.process.poll() is None for each in runs), "a run ended before the restart"
        restart(cluster)
        for each, prefix in zip(runs, ("a", "b")):
            code, stdout, stderr = each.finish()
            assert code == 2, stdout + stderr
            errors = [line for line in stderr.splitlines() if line.startswith("querywarden: error: ")]
            assert len(errors) == 1, stderr
            assert re.match(
                rf"querywarden: error: lost the database connection (while measuring|before measuring|while "
                rf"preparing to measure) query '{prefix}_\d{{3}}'",
                errors[0],
            ), errors[0]
            assert "passed" not in stdout and "written" not in stdout

        # 3. Nothing was half-written or rewritten, and every file still parses.
        assert snapshot(baselines) == recorded
        store = BaselineStore(baselines)
        assert sorted(store.names()) == sorted(f"{p}_{i:03d}" for p in ("a", "b") for i in range(PER_RUN))

        # 4. The restarted server serves a clean run over the same baselines.
        (tmp_path / "few.sql").write_text("\n\n".join(catalog("b").split("\n\n")[:10]) + "\n")
        again = run("check", "few")
        code, stdout, stderr = again.finish()
        assert code in (0, 1), stdout + stderr
        assert "querywarden: error" not in stderr
