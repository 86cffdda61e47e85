"""A large unchanged catalog checked against its base revision on a loaded machine (issue 18).

    python benchmarks/base_at_scale.py [--queries 2000] [--load 2] [--scale 0.1] [--shards 4] [--schema-change]

Builds a git repository of its own in a temporary directory: the time-tracker example's schema and seed
and a generated catalog of `--queries` cheap queries (index lookups, short range scans and aggregates of
the example's tables, most of them hot), committed on `main`, with the baselines recorded there on a
quiet machine. Then, with `--load` busy-looping processes competing for the CPUs, it runs on a branch
where nothing changed (with `--schema-change`, only a comment in schema.sql, so the head builds another
template and the two sides are two databases):

* `querywarden check` (stored baselines): how many queries block on timing alone;
* `querywarden check --base main`: must block nothing;
* `querywarden check --base main --shard i/N` for each shard: the wall time each of N matrix jobs takes.

Prints verdict counts and wall times. Not part of the test suite: it takes minutes.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "timetracker"
QUERYWARDEN = Path(sys.executable).with_name("querywarden")

SHAPES = (
    ("SELECT id, description, started_at FROM time_entries WHERE id = {k}", 4000),
    ("SELECT id, name FROM projects WHERE id = {p}", 3000),
    ("SELECT id, email FROM users WHERE id = {u}", 2500),
    ("SELECT count(*) FROM time_entries WHERE user_id = {u}", 1200),
    ("SELECT id, started_at FROM time_entries WHERE user_id = {u} ORDER BY started_at DESC LIMIT 10", 2000),
    ("SELECT project_id, sum(duration_s) FROM time_entries WHERE user_id = {u} GROUP BY project_id", 600),
    ("SELECT t.name FROM tags t WHERE t.workspace_id = {w} ORDER BY t.name LIMIT 20", 1500),
)


def catalog(count: int) -> str:
    blocks = []
    for i in range(count):
        sql, rate = SHAPES[i % len(SHAPES)]
        text = sql.format(k=1 + (i * 37) % 90000, p=1 + i % 2000, u=1 + i % 2000, w=1 + i % 200)
        blocks.append(f"-- name: q{i:05d}\n-- calls-per-minute: {rate + i % 7}\n{text};\n")
    return "\n".join(blocks)


def _spin() -> None:
    while True:
        pass


def run(*args: str, cwd: Path) -> tuple[int, float, str]:
    started = time.perf_counter()
    done = subprocess.run([str(QUERYWARDEN), *args], cwd=cwd, capture_output=True, text=True, check=False)
    return done.returncode, time.perf_counter() - started, done.stdout + done.stderr


def tally(results: Path) -> tuple[Counter[str], list[str]]:
    """Verdict counts, and a line for each query that did not simply pass (blocking ones first)."""
    queries = json.loads(results.read_text())["queries"]
    counts = Counter(q["verdict"] for q in queries)
    shown = sorted((q for q in queries if q["verdict"] != "pass"), key=lambda q: not q["blocking"])
    lines = [f"{q['verdict']}{' (blocks)' if q['blocking'] else ''} {q['name']}: {'; '.join(q['reasons'])[:300]} "
             f"[{q.get('basis', '')[:60]}]" for q in shown]
    return counts, lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dsn", default=os.environ.get("QUERYWARDEN_DSN", "postgresql://postgres@127.0.0.1:5432/postgres"))
    parser.add_argument("--queries", type=int, default=2000)
    parser.add_argument("--scale", type=float, default=0.1)
    parser.add_argument("--load", type=int, default=2, help="busy-looping processes during the checks")
    parser.add_argument("--shards", type=int, default=4)
    parser.add_argument("--schema-change", action="store_true", help="a comment in schema.sql: two databases")
    args = parser.parse_args()
    os.environ["QUERYWARDEN_DSN"] = args.dsn
    root = Path(tempfile.mkdtemp(prefix="qw_base_scale_"))
    try:
        for name in ("schema.sql", "seed.sql"):
            shutil.copy(EXAMPLE / name, root / name)
        (root / "queries.sql").write_text(catalog(args.queries))
        (root / "pyproject.toml").write_text(
            '[tool.querywarden]\ncatalog = ["queries.sql"]\nbaselines = "baselines"\n'
            f'schema = ["schema.sql"]\nseed = ["seed.sql"]\nscale = {args.scale}\n'
        )
        git = ["git", "-c", "user.name=b", "-c", "user.email=b@example.com", "-C", str(root)]
        subprocess.run([*git, "init", "-q", "-b", "main"], check=True)
        status, seconds, out = run("update", cwd=root)
        print(f"update on a quiet machine: exit {status}, {seconds:.0f} s")
        if status != 0:
            print(out[-2000:])
            return
        subprocess.run([*git, "add", "-A"], check=True)
        subprocess.run([*git, "commit", "-q", "-m", "base"], check=True)
        subprocess.run([*git, "checkout", "-q", "-b", "change"], check=True)
        if args.schema_change:
            with open(root / "schema.sql", "a", encoding="utf-8") as schema:
                schema.write("\n-- a comment: another template, the same database\n")
            run("check", "--only", "q00000", cwd=root)  # builds the head's template outside the timings

        hogs = [multiprocessing.Process(target=_spin, daemon=True) for _ in range(args.load)]
        for hog in hogs:
            hog.start()
        try:
            print(f"{args.queries} queries, scale {args.scale}, {args.load} busy loops, "
                  f"{'two databases (schema comment)' if args.schema_change else 'one database (unchanged)'}, "
                  f"load average {os.getloadavg()[0]:.1f} at the start")
            for label, extra in (("stored baselines", ()), ("--base main", ("--base", "main"))):
                status, seconds, out = run("check", *extra, "--json", str(root / "out.json"), cwd=root)
                if not (root / "out.json").exists():
                    print(f"{label}: exit {status}, no results\n{out[-2000:]}")
                    continue
                counts, shown = tally(root / "out.json")
                blocked = sum(1 for line in shown if " (blocks) " in line)
                print(f"{label:<18} exit {status}  {seconds:6.0f} s  {dict(counts)}  blocked {blocked}")
                for line in shown[:6]:
                    print(f"    {line}")
                (root / "out.json").unlink()
            for index in range(1, args.shards + 1):
                out_file = root / f"shard{index}.json"
                status, seconds, _ = run("check", "--base", "main", "--shard", f"{index}/{args.shards}",
                                         "--json", str(out_file), cwd=root)
                counts, shown = tally(out_file)
                blocked = sum(1 for line in shown if " (blocks) " in line)
                print(f"shard {index}/{args.shards}          exit {status}  {seconds:6.0f} s  {sum(counts.values())} queries  blocked {blocked}")
            files = [arg for index in range(1, args.shards + 1) for arg in ("--from", str(root / f"shard{index}.json"))]
            status, _, out = run("report", *files, "--format", "json", "--output", str(root / "merged.json"), cwd=root)
            counts, shown = tally(root / "merged.json")
            print(f"merged shards      exit {status}  {dict(counts)}  blocked {sum(1 for line in shown if ' (blocks) ' in line)}")
        finally:
            for hog in hogs:
                hog.terminate()
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
