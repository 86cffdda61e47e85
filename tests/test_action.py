"""The composite action (action.yml), run the way the runner runs it: each step's `run:` script by bash, in
order, with a simulated GitHub environment (GITHUB_OUTPUT per step, GITHUB_STEP_SUMMARY, GITHUB_ENV,
GITHUB_PATH and RUNNER_TEMP in a temporary folder, GITHUB_ACTION_PATH the repository) and the inputs
substituted into the env each step declares.

The first tests run the real thing on a copy of the time-tracker example (its tests import SQLAlchemy):
pytest mode with the Python of this test run as the job's environment (it has the example's dependencies
and querywarden, so the action installs nothing), and catalog mode on the example catalog, both against
the real PostgreSQL of `pg_dsn`. The rest replace the measuring run or the job's Python by stand-ins to
cover each exit path and the install decisions quickly.

bash is required: these tests fail, never skip, without it.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import on_a_branch_off_main

ROOT = Path(__file__).resolve().parent.parent
ACTION = ROOT / "action.yml"
EXAMPLE = ROOT / "examples" / "timetracker"
MARKER = "<!-- querywarden-report -->"
#: The job's environment: the interpreter running these tests has the example's dependencies and querywarden.
JOB_BIN = Path(sys.executable).parent

_EXPRESSION = re.compile(r"\$\{\{\s*([^}]*?)\s*\}\}")


@dataclass
class ActionRun:
    status: int
    outputs: dict[str, str]
    step_outputs: dict[str, dict[str, str]]
    log: str
    summary: str
    github_path: str
    github_env: str
    steps_run: list[str]


def _bash() -> str:
    bash = shutil.which("bash")
    if bash is None:
        pytest.fail("the action's steps run with bash, which is not installed: `apt-get install -y bash`", pytrace=False)
    return bash


def _parse_outputs(text: str) -> dict[str, str]:
    """GITHUB_OUTPUT lines: `name=value` and the `name<<DELIMITER` multi-line form."""
    outputs: dict[str, str] = {}
    lines = iter(text.splitlines())
    for line in lines:
        if "<<" in line and ("=" not in line or line.index("<<") < line.index("=")):
            name, delimiter = line.split("<<", 1)
            value = []
            for body in lines:
                if body == delimiter:
                    break
                value.append(body)
            outputs[name] = "\n".join(value)
        elif "=" in line:
            name, value = line.split("=", 1)
            outputs[name] = value
    return outputs


def run_action(
    tmp_path: Path,
    inputs: dict[str, str],
    *,
    workspace: Path | None = None,
    path: list[Path] | None = None,
    env: dict[str, str] | None = None,
    stop_after: str | None = None,
    github_context: dict[str, str] | None = None,
) -> ActionRun:
    """Run the action's steps as the runner would; stops at the first failing step (or after `stop_after`).

    `github_context` holds the `github.…` expressions the runner would fill in (absent ones are empty,
    as `github.event.pull_request.base.sha` is outside a pull request)."""
    from ruamel.yaml import YAML

    bash = _bash()
    action = YAML(typ="safe").load(ACTION.read_text(encoding="utf-8"))
    context = github_context or {}

    def from_github(text: str) -> str:
        return _EXPRESSION.sub(lambda m: context.get(m.group(1), "") if m.group(1).startswith("github.") else m.group(0), text)

    values = {name: from_github(str(spec.get("default", ""))) for name, spec in action["inputs"].items()}
    unknown = set(inputs) - set(values)
    assert not unknown, f"the action has no inputs {unknown}"
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

    github = tmp_path / "github"
    github.mkdir()
    runner_temp = github / "runner-temp"
    runner_temp.mkdir()
    summary, github_path, github_env = github / "step-summary.md", github / "path", github / "env"
    for file in (summary, github_path, github_env):
        file.write_text("")
    workspace = workspace or tmp_path
    search_path = [str(p) for p in (path if path is not None else [JOB_BIN])] + ["/usr/bin", "/bin"]
    job_env: dict[str, str] = {}
    log, status, steps_run = "", 0, []
    for index, step in enumerate(action["runs"]["steps"]):
        assert step.get("shell") == "bash", f"step {index} does not run with bash"
        assert "if" not in step, "the harness does not evaluate step conditions"
        step_id = step.get("id", f"step{index}")
        output_file = github / f"output-{index}"
        output_file.write_text("")
        script = github / f"step-{index}.sh"
        script.write_text(step["run"], encoding="utf-8")
        step_env = {
            "PATH": os.pathsep.join(search_path),
            "HOME": str(tmp_path),
            "LANG": "C.UTF-8",
            "CI": "true",
            "GITHUB_ACTIONS": "true",
            "GITHUB_WORKSPACE": str(workspace),
            "GITHUB_ACTION_PATH": str(ROOT),
            "RUNNER_TEMP": str(runner_temp),
            "GITHUB_OUTPUT": str(output_file),
            "GITHUB_STEP_SUMMARY": str(summary),
            "GITHUB_PATH": str(github_path),
            "GITHUB_ENV": str(github_env),
            **job_env,
            **(env or {}),
        }
        step_env.update({key: expand(str(value)) for key, value in step.get("env", {}).items()})
        completed = subprocess.run(
            [bash, "--noprofile", "--norc", "-eo", "pipefail", str(script)],
            cwd=workspace,
            env=step_env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        steps_run.append(step_id)
        log += completed.stdout + completed.stderr
        step_outputs[step_id] = _parse_outputs(output_file.read_text(encoding="utf-8"))
        # What the runner does with these files between steps, so a leak would show in the later steps too.
        search_path = [line for line in github_path.read_text().splitlines() if line][::-1] + search_path
        job_env.update(_parse_outputs(github_env.read_text(encoding="utf-8")))
        if completed.returncode != 0:
            status = completed.returncode
            break
        if step_id == stop_after:
            break
    outputs = {name: expand(str(spec["value"])) for name, spec in action["outputs"].items()}
    return ActionRun(
        status, outputs, step_outputs, log, summary.read_text(encoding="utf-8"),
        github_path.read_text(), github_env.read_text(), steps_run,
    )


def assert_reported_once(run: ActionRun) -> str:
    """The job summary holds the Markdown report exactly once, and that is the report-md file."""
    assert run.summary.count(MARKER) == 1, run.summary
    markdown = Path(run.outputs["report-md"]).read_text(encoding="utf-8")
    assert run.summary == markdown
    return markdown


def assert_job_environment_untouched(run: ActionRun) -> None:
    assert run.github_path == "", f"the action wrote GITHUB_PATH: {run.github_path!r}"
    assert run.github_env == "", f"the action wrote GITHUB_ENV: {run.github_env!r}"


def assert_outputs(run: ActionRun, verdict: str) -> None:
    assert run.outputs["verdict"] == verdict
    for name in ("results", "report-md", "report-html"):
        assert Path(run.outputs[name]).is_file(), (name, run.outputs)
    assert Path(run.outputs["report-html"]).read_text(encoding="utf-8").startswith("<!doctype html>")


# --------------------------------------------------------------------------------------------------
# The real action on the example project.

# catalog mode with everything in [tool.querywarden]: the catalog, the baselines, the schema and the seed
CATALOG_PYPROJECT = (
    '[tool.querywarden]\ncatalog = ["queries.sql"]\nbaselines = "baselines/catalog"\n'
    'schema = ["schema.sql"]\nseed = ["seed.sql"]\n'
)
DROP_RUNNING_TIMER_INDEX = "\n-- the migration under review\nDROP INDEX time_entries_running_timer_idx;\n"


def example_project(tmp_path: Path, *, drop_index: bool = False) -> Path:
    """A repository of its own holding the time-tracker and its test baselines (baselines/timetracker-tests)."""
    project = tmp_path / "project"
    shutil.copytree(EXAMPLE, project, ignore=shutil.ignore_patterns("__pycache__", "changes"))
    shutil.copytree(ROOT / "baselines" / "timetracker-tests", project / "baselines" / "timetracker-tests")
    shutil.copytree(ROOT / "baselines" / "timetracker", project / "baselines" / "catalog")
    if drop_index:
        with open(project / "schema.sql", "a", encoding="utf-8") as schema:
            schema.write(DROP_RUNNING_TIMER_INDEX)
    return project


def test_pytest_mode_runs_the_projects_tests_in_the_jobs_environment(tmp_path: Path, pg_dsn: str) -> None:
    project = example_project(tmp_path)
    run = run_action(
        tmp_path,
        # Several lines, as a YAML block would give them.
        {"dsn": pg_dsn, "pytest-args": "tests\n  -p no:randomly\n", "baselines": "baselines/timetracker-tests"},
        workspace=project,
    )
    assert run.status == 0, run.log
    assert run.steps_run == ["setup", "check", "report", "verdict"]
    # querywarden was importable by the job's python: nothing installed, and that python ran the tests.
    assert "installing querywarden" not in run.log
    assert run.step_outputs["setup"]["python"] == str(JOB_BIN / "python")
    assert "6 passed" in run.log  # the example's tests import sqlalchemy: they ran, in that environment
    assert run.step_outputs["check"]["run-status"] == "0"
    assert_outputs(run, "pass")
    markdown = assert_reported_once(run)
    assert markdown.splitlines()[1] == "## ✅ querywarden: passed: 9 queries guarded, none blocks the merge"
    assert_job_environment_untouched(run)


def test_pytest_mode_blocks_a_migration_that_drops_the_hot_index(tmp_path: Path, pg_dsn: str) -> None:
    project = example_project(tmp_path, drop_index=True)
    run = run_action(
        tmp_path,
        {"dsn": pg_dsn, "pytest-args": "tests -p no:randomly", "baselines": "baselines/timetracker-tests"},
        workspace=project,
    )
    assert run.status == 1, run.log
    assert run.steps_run == ["setup", "check", "report", "verdict"]
    assert run.step_outputs["check"]["run-status"] == "1"  # the guard failed the hot path's test
    assert "a guarded query blocks the merge" in run.log
    # The annotation sits on the line of the application that issued the statement.
    assert re.search(r"^::error file=app\.py,line=\d+,title=querywarden%3A tests/test_hot_paths\.py%3A%3Atest_running_timer ",
                     run.log, re.M), run.log
    assert_outputs(run, "fail")
    markdown = assert_reported_once(run)
    assert "merge blocked" in markdown.splitlines()[1]
    assert "test&#95;running&#95;timer" in markdown  # names are escaped
    assert_job_environment_untouched(run)


def test_catalog_mode_on_the_example_catalog(tmp_path: Path, pg_dsn: str) -> None:
    project = example_project(tmp_path)
    (project / "pyproject.toml").write_text(
        '[tool.querywarden]\nschema = ["schema.sql"]\nseed = ["seed.sql"]\n', encoding="utf-8"
    )
    run = run_action(
        tmp_path, {"dsn": pg_dsn, "catalog": "queries.sql", "baselines": "baselines/catalog"}, workspace=project
    )
    assert run.status == 0, run.log
    assert "installing querywarden" not in run.log
    assert_outputs(run, "pass")
    markdown = assert_reported_once(run)
    assert markdown.splitlines()[1] == "## ✅ querywarden: passed: 9 queries guarded, none blocks the merge"
    assert_job_environment_untouched(run)


def test_catalog_mode_no_fail_reports_a_regression_and_passes(tmp_path: Path, pg_dsn: str) -> None:
    project = example_project(tmp_path, drop_index=True)
    (project / "pyproject.toml").write_text(CATALOG_PYPROJECT, encoding="utf-8")
    # catalog and baselines from [tool.querywarden]: the inputs are left empty
    run = run_action(tmp_path, {"dsn": pg_dsn, "fail-mode": "no-fail"}, workspace=project)
    assert run.status == 0, run.log
    assert_outputs(run, "fail")
    markdown = assert_reported_once(run)
    assert "merge blocked" in markdown.splitlines()[1]
    assert "running&#95;timer" in markdown
    assert "::error file=queries.sql,line=" in run.log
    assert_job_environment_untouched(run)


def test_catalog_mode_measures_against_the_pull_requests_base_by_default(tmp_path: Path, pg_dsn: str) -> None:
    project = example_project(tmp_path)
    (project / "pyproject.toml").write_text(CATALOG_PYPROJECT, encoding="utf-8")
    base = on_a_branch_off_main(project)
    with open(project / "schema.sql", "a", encoding="utf-8") as schema:
        schema.write(DROP_RUNNING_TIMER_INDEX)
    run = run_action(tmp_path, {"dsn": pg_dsn}, workspace=project,
                     github_context={"github.event.pull_request.base.sha": base})
    assert run.status == 1, run.log
    assert f"base revision: {base[:12]} (the merge base of {base} and HEAD)" in run.log
    assert_outputs(run, "fail")
    markdown = assert_reported_once(run)
    assert f"Verdicts rest on: 9 on same-run A/B against the base revision {base[:12]}." in markdown
    assert "same-run A/B against the base revision" in markdown.split("running&#95;timer", 1)[1]


def test_base_none_compares_with_the_stored_baselines(tmp_path: Path, pg_dsn: str) -> None:
    project = example_project(tmp_path)
    (project / "pyproject.toml").write_text(CATALOG_PYPROJECT, encoding="utf-8")
    base = on_a_branch_off_main(project)
    run = run_action(tmp_path, {"dsn": pg_dsn, "base": "none"}, workspace=project,
                     github_context={"github.event.pull_request.base.sha": base})
    assert run.status == 0, run.log
    assert "base revision:" not in run.log
    assert "Verdicts rest on: 9 on the stored baseline." in assert_reported_once(run)


def test_pytest_mode_replays_the_tests_statements_on_the_base(tmp_path: Path, pg_dsn: str) -> None:
    project = example_project(tmp_path)
    base = on_a_branch_off_main(project)
    run = run_action(
        tmp_path,
        {"dsn": pg_dsn, "pytest-args": "tests -p no:randomly", "baselines": "baselines/timetracker-tests"},
        workspace=project,
        github_context={"github.event.pull_request.base.sha": base},
    )
    assert run.status == 0, run.log
    assert f"querywarden: base revision: {base[:12]}" in run.log
    assert f"on same-run A/B against the base revision {base[:12]}" in assert_reported_once(run)


# --------------------------------------------------------------------------------------------------
# Stand-ins: a job's Python whose measuring run copies a prepared results file (no database), with the
# real `querywarden report`; and a job's Python without querywarden, to see what the action installs where.


def _fake_measuring_python(folder: Path) -> Path:
    """`python` that fakes `-m querywarden.cli check` and `-m pytest` and is the real interpreter otherwise."""
    bin_dir = folder / "fake-bin"
    bin_dir.mkdir()
    python = bin_dir / "python"
    python.write_text(
        "#!/bin/bash\n"
        'if [ "$1 $2 $3" = "-m querywarden.cli check" ] || [ "$1 $2" = "-m pytest" ]; then\n'
        '  shift 2\n'
        '  printf "%s\\n" "$*" >> "$FAKE_LOG"\n'
        '  [ -z "${GITHUB_STEP_SUMMARY+set}" ] || echo "the measuring run saw GITHUB_STEP_SUMMARY" >> "$FAKE_LOG"\n'
        "  while [ $# -gt 0 ]; do\n"
        '    case "$1" in --json|--querywarden-json) [ -z "$FAKE_RESULTS" ] || cp "$FAKE_RESULTS" "$2" ;; esac\n'
        "    shift\n"
        "  done\n"
        '  exit "${FAKE_CHECK_STATUS:-0}"\n'
        "fi\n"
        f'exec "{sys.executable}" "$@"\n',
        encoding="utf-8",
    )
    python.chmod(0o755)
    return bin_dir


@pytest.fixture
def results_files(tmp_path: Path) -> dict[str, Path]:
    from report_samples import sample_run

    from querywarden.reports.results import write_results
    from querywarden.verdict import RunResult

    blocking, clean = tmp_path / "blocking.json", tmp_path / "clean.json"
    write_results(sample_run(), blocking)
    write_results(RunResult(sample_run().queries[:2]), clean)
    return {"blocking": blocking, "clean": clean}


def faked(
    tmp_path: Path, inputs: dict[str, str], results: Path | None, check_status: int = 0
) -> tuple[ActionRun, Path]:
    log = tmp_path / "check-args"
    run = run_action(
        tmp_path,
        inputs,
        path=[_fake_measuring_python(tmp_path)],
        env={"FAKE_LOG": str(log), "FAKE_RESULTS": str(results or ""), "FAKE_CHECK_STATUS": str(check_status)},
    )
    return run, log


def test_action_blocks_and_reports(tmp_path: Path, results_files: dict[str, Path]) -> None:
    run, log = faked(tmp_path, {"dsn": "postgresql://ci@localhost/app"}, results_files["blocking"])
    assert run.status == 1
    assert_outputs(run, "fail")
    assert "::error file=queries/hot.sql,line=12,title=querywarden%3A user_total_minutes fail (blocking)::" in run.log
    assert "a guarded query blocks the merge" in run.log
    markdown = assert_reported_once(run)
    assert markdown.splitlines()[1] == "## ❌ querywarden: merge blocked: 1 of 6 queries blocks"
    args = log.read_text()
    assert args.startswith("check --dsn postgresql://ci@localhost/app --json ")
    assert "--baselines" not in args  # the project's own setting decides
    assert args.splitlines()[0].endswith("--no-fail") and "--catalog" not in args
    assert "saw GITHUB_STEP_SUMMARY" not in args
    assert_job_environment_untouched(run)


def test_action_no_fail_mode_passes_a_blocking_run(tmp_path: Path, results_files: dict[str, Path]) -> None:
    run, log = faked(
        tmp_path,
        {"dsn": "postgresql://x", "fail-mode": "no-fail", "catalog": "queries/hot.sql", "baselines": "qb"},
        results_files["blocking"],
    )
    assert run.status == 0
    assert_outputs(run, "fail")
    args = log.read_text()
    assert args.rstrip().endswith("--no-fail --baselines qb --catalog queries/hot.sql")


def test_action_passes_a_clean_run(tmp_path: Path, results_files: dict[str, Path]) -> None:
    run, _ = faked(tmp_path, {"dsn": "postgresql://x"}, results_files["clean"])
    assert run.status == 0
    assert_outputs(run, "pass")
    assert "## ✅ querywarden: passed: 2 queries guarded" in assert_reported_once(run)


def test_action_pytest_mode_fails_on_failing_tests_even_when_nothing_blocks(
    tmp_path: Path, results_files: dict[str, Path]
) -> None:
    run, log = faked(tmp_path, {"dsn": "postgresql://x", "pytest-args": "tests/hot -k 'not slow'"}, results_files["clean"], 1)
    assert run.status == 1
    assert run.outputs["verdict"] == "pass"
    assert "pytest reported failing tests" in run.log
    args = log.read_text()
    # Whitespace-separated, no shell: the quotes are pytest's, literally.
    assert args.startswith("tests/hot -k 'not slow' --querywarden-json ")  # baselines: the project's ini decides
    assert "saw GITHUB_STEP_SUMMARY" not in args
    assert_reported_once(run)


def test_action_refuses_an_unknown_fail_mode(tmp_path: Path, results_files: dict[str, Path]) -> None:
    run, log = faked(tmp_path, {"dsn": "postgresql://x", "fail-mode": "maybe"}, results_files["clean"])
    assert run.status == 2
    assert "::error title=querywarden::fail-mode must be 'block' or 'no-fail', not 'maybe'" in run.log
    assert not log.exists()


def test_action_refuses_an_unknown_install_mode(tmp_path: Path, results_files: dict[str, Path]) -> None:
    run, log = faked(tmp_path, {"dsn": "postgresql://x", "install": "always"}, results_files["clean"])
    assert run.status == 2
    assert "::error title=querywarden::install must be 'auto' or 'skip', not 'always'" in run.log
    assert not log.exists()


def test_action_fails_when_the_run_cannot_measure(tmp_path: Path) -> None:
    run, _ = faked(tmp_path, {"dsn": "postgresql://x"}, None, check_status=2)
    assert run.status == 2
    assert "the run could not complete (exit status 2)" in run.log
    assert run.outputs["verdict"] == ""
    assert run.summary == ""


def test_action_inputs_cannot_inject_shell(tmp_path: Path, results_files: dict[str, Path]) -> None:
    hostile = "postgresql://x'; touch injected; echo '$(touch injected2)`touch injected3`"
    run, log = faked(tmp_path, {"dsn": hostile, "baselines": "b; touch injected4"}, results_files["clean"])
    assert run.status == 0
    assert not list(tmp_path.rglob("injected*"))
    assert f"--dsn {hostile} " in log.read_text()


def _python_without_querywarden(folder: Path) -> Path:
    """A job's `python` that cannot import querywarden until `-m pip install` ran into its environment.

    `-m venv DIR` makes DIR/bin/python a copy of it; every install is logged as `<python> <args>`.
    """
    bin_dir = folder / "bare-bin"
    bin_dir.mkdir()
    python = bin_dir / "python"
    python.write_text(
        "#!/bin/bash\n"
        'if [ "$1 $2 $3" = "-m pip install" ]; then\n'
        '  echo "$0 $*" >> "$INSTALL_LOG"; touch "$0.installed"; exit 0\n'
        "fi\n"
        'if [ "$1 $2" = "-m venv" ]; then\n'
        '  mkdir -p "$3/bin" && cp "$0" "$3/bin/python" && echo "venv $3" >> "$INSTALL_LOG"; exit 0\n'
        "fi\n"
        '[ -e "$0.installed" ] || exit 1\n'
        f'exec "{sys.executable}" "$@"\n',
        encoding="utf-8",
    )
    python.chmod(0o755)
    return bin_dir


def _setup_only(tmp_path: Path, inputs: dict[str, str]) -> tuple[ActionRun, str]:
    bin_dir = _python_without_querywarden(tmp_path)
    log = tmp_path / "installs"
    run = run_action(tmp_path, {"dsn": "postgresql://x", **inputs}, path=[bin_dir], env={"INSTALL_LOG": str(log)},
                     stop_after="setup")
    return run, log.read_text() if log.exists() else ""


def test_pytest_mode_installs_querywarden_into_the_jobs_python(tmp_path: Path) -> None:
    run, installs = _setup_only(tmp_path, {"pytest-args": "tests"})
    assert run.status == 0, run.log
    job_python = tmp_path / "bare-bin" / "python"
    assert installs == f"{job_python} -m pip install --quiet {ROOT}\n"
    assert run.step_outputs["setup"]["python"] == str(job_python)
    assert_job_environment_untouched(run)


def test_catalog_mode_installs_querywarden_into_a_private_venv_off_path(tmp_path: Path) -> None:
    run, installs = _setup_only(tmp_path, {})
    assert run.status == 0, run.log
    venv = tmp_path / "github" / "runner-temp" / "querywarden-venv"
    assert installs == f"venv {venv}\n{venv}/bin/python -m pip install --quiet {ROOT}\n"
    assert run.step_outputs["setup"]["python"] == str(venv / "bin" / "python")
    assert not (tmp_path / "bare-bin" / "python.installed").exists()  # the job's environment is as it was
    assert_job_environment_untouched(run)


def test_install_skip_fails_when_querywarden_is_missing(tmp_path: Path) -> None:
    run, installs = _setup_only(tmp_path, {"install": "skip", "pytest-args": "tests"})
    assert run.status == 2
    assert "install is 'skip' but" in run.log and "cannot import querywarden" in run.log
    assert installs == ""


def test_install_skip_uses_the_querywarden_already_there(tmp_path: Path) -> None:
    run = run_action(tmp_path, {"dsn": "postgresql://x", "install": "skip"}, stop_after="setup")
    assert run.status == 0, run.log
    assert run.step_outputs["setup"]["python"] == str(JOB_BIN / "python")
    assert "querywarden 0." in run.log and "installing" not in run.log


def test_the_python_input_names_the_jobs_interpreter(tmp_path: Path) -> None:
    """A project venv that is not on PATH, given relative to the workspace, is used by its absolute path."""
    venv_bin = tmp_path / "project" / ".venv" / "bin"
    venv_bin.mkdir(parents=True)
    (venv_bin / "python").symlink_to(_fake_measuring_python(tmp_path) / "python")
    run = run_action(
        tmp_path, {"dsn": "postgresql://x", "python": ".venv/bin/python"}, workspace=tmp_path / "project",
        path=[], stop_after="setup",
    )
    assert run.status == 0, run.log
    assert run.step_outputs["setup"]["python"] == str(venv_bin / "python")


def test_a_missing_python_is_one_clear_error(tmp_path: Path) -> None:
    run = run_action(tmp_path, {"dsn": "postgresql://x", "python": "python9.9"}, stop_after="setup")
    assert run.status == 2
    assert "::error title=querywarden::no Python interpreter 'python9.9'" in run.log
