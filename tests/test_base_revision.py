"""`check --base REF`: the base revision is read from git, built and measured beside the working tree
in the same run, on a real PostgreSQL.

A small project in a git repository of its own: schema + seed + catalog committed on `main`, then a
branch changes the schema only (a migration file), never the catalog's SQL.
"""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from querywarden.cli import main
from querywarden.database import Server
from querywarden.revision import exported
from querywarden.seeding.seed import Seed, drop_template, migrations_onto, template_name

from conftest import git, on_a_branch_off_main

SCHEMA = """
CREATE TABLE accounts (id bigint PRIMARY KEY, email text NOT NULL, balance numeric NOT NULL DEFAULT 0);
CREATE INDEX accounts_email_idx ON accounts (email);
CREATE FUNCTION display_name(email text) RETURNS text LANGUAGE plpgsql STABLE
AS $$ BEGIN RETURN split_part(email, '@', 1); END $$;
"""

SEED = "INSERT INTO accounts SELECT g, 'user' || g || '@example.com', g % 100 FROM generate_series(1, 20000) AS g;\n"

CATALOG = """-- name: account_by_email
-- calls-per-minute: 3000
-- params: {"email": "user77@example.com"}
SELECT id, balance FROM accounts WHERE email = %(email)s;

-- name: account_names
-- calls-per-minute: 5000
-- params: {"lo": 100}
SELECT id, display_name(email) FROM accounts WHERE id BETWEEN %(lo)s AND %(lo)s + 4;

-- name: credit
-- calls-per-minute: 100
-- params: {"id": 42}
UPDATE accounts SET balance = balance + 1 WHERE id = %(id)s;
"""

PYPROJECT = """[tool.querywarden]
catalog = ["queries.sql"]
baselines = "baselines"
schema = {schema}
seed = ["seed.sql"]
"""

# The function body now sleeps a millisecond per row: the same SQL, plan and blocks, five times a call.
SLOWER_FUNCTION = """CREATE OR REPLACE FUNCTION display_name(email text) RETURNS text LANGUAGE plpgsql STABLE
AS $$ BEGIN PERFORM pg_sleep(0.001); RETURN split_part(email, '@', 1); END $$;
"""


def write_project(root: Path, migrations: tuple[str, ...] = ()) -> None:
    (root / "schema.sql").write_text(SCHEMA)
    (root / "seed.sql").write_text(SEED)
    (root / "queries.sql").write_text(CATALOG)
    schema = json.dumps(["schema.sql", *migrations])
    (root / "pyproject.toml").write_text(PYPROJECT.format(schema=schema))


@pytest.fixture
def project(tmp_path: Path, pg_dsn: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The project committed on `main`, checked out on a branch `change` with nothing changed yet."""
    root = tmp_path / "project"
    root.mkdir()
    write_project(root)
    on_a_branch_off_main(root)
    monkeypatch.chdir(root)
    monkeypatch.setenv("QUERYWARDEN_DSN", pg_dsn)
    return root


def migrate(root: Path, name: str, ddl: str) -> None:
    """A migration the branch adds: a schema item after schema.sql (left uncommitted: the working tree is the head)."""
    (root / "migrations").mkdir(exist_ok=True)
    (root / "migrations" / name).write_text(ddl)
    write_project(root, (f"migrations/{name}",))


def check(*args: str) -> Result:
    return CliRunner().invoke(main, ["check", *args], catch_exceptions=False)


def verdicts(path: Path) -> dict[str, dict[str, object]]:
    return {q["name"]: q for q in json.loads(path.read_text())["queries"]}


def test_unchanged_branch_passes_on_a_same_run_comparison_with_the_base(project: Path) -> None:
    result = check("--base", "main", "--json", "out.json")
    assert result.exit_code == 0, result.output
    base = git(project, "rev-parse", "main")[:12]
    found = verdicts(project / "out.json")
    assert set(found) == {"account_by_email", "account_names", "credit"}
    for name, query in found.items():
        assert query["basis"] == f"same-run A/B against the base revision {base}: plan, work and timing", name
        assert query["blocking"] is False
    assert f"verdicts rest on: 3 on same-run A/B against the base revision {base}" in result.output


def test_a_migration_that_drops_the_index_blocks_against_the_base(project: Path) -> None:
    migrate(project, "002_drop_email_index.sql", "DROP INDEX accounts_email_idx;\n")
    result = check("--base", "main", "--json", "out.json")
    assert result.exit_code == 1, result.output
    lookup = verdicts(project / "out.json")["account_by_email"]
    assert lookup["verdict"] == "fail" and lookup["blocking"] is True
    assert any("became Seq Scan" in reason for reason in lookup["reasons"]), lookup["reasons"]
    assert str(lookup["basis"]).startswith("same-run A/B against the base revision")


def test_a_slower_function_body_with_unchanged_sql_blocks_on_the_same_run_timing(project: Path) -> None:
    migrate(project, "002_slower_name.sql", SLOWER_FUNCTION)
    result = check("--base", "main", "--json", "out.json")
    assert result.exit_code == 1, result.output
    names = verdicts(project / "out.json")["account_names"]
    assert names["blocking"] is True
    reasons = names["reasons"]
    assert any(str(r).startswith("same-run A/B against the base revision") for r in reasons), reasons
    # Plan and blocks are the base's: only the interleaved timing saw it.
    before, after = names["before"], names["after"]
    assert isinstance(before, dict) and isinstance(after, dict)
    assert not any(str(r).startswith("buffers") for r in reasons)
    assert verdicts(project / "out.json")["account_by_email"]["blocking"] is False


def test_a_query_the_base_does_not_have_is_judged_as_new(project: Path) -> None:
    (project / "queries.sql").write_text(CATALOG + """
-- name: richest
-- calls-per-minute: 2000
SELECT id FROM accounts ORDER BY balance DESC LIMIT 10;
""")
    result = check("--base", "main", "--json", "out.json")
    richest = verdicts(project / "out.json")["richest"]
    assert richest["verdict"] == "new"
    assert str(richest["basis"]).startswith("new: not in the base revision")
    assert any(str(r).startswith("new: ") and "calls/min" in str(r) for r in richest["reasons"]), richest["reasons"]
    assert result.exit_code == (1 if richest["blocking"] else 0)


def test_the_base_template_built_by_a_run_on_main_is_reused_and_migrated(project: Path, server: Server) -> None:
    git(project, "checkout", "-q", "main")
    assert check().exit_code == 0  # the main branch's own run builds the base's template
    base_seed = Seed(("seed.sql",), 1.0, project, ("schema.sql",))
    base_template = template_name(base_seed)
    assert server.exists(base_template)
    git(project, "checkout", "-q", "change")
    migrate(project, "002_slower_name.sql", SLOWER_FUNCTION + f"-- {uuid.uuid4().hex}: a head template no earlier run built\n")
    head_seed = Seed(("seed.sql",), 1.0, project, ("schema.sql", "migrations/002_slower_name.sql"))
    assert migrations_onto(base_seed, head_seed) == ("migrations/002_slower_name.sql",)
    result = check("--base", "main")
    assert result.exit_code == 1, result.output
    assert f"seeding {base_template}" not in result.output
    # The head: a copy of the base's template with the new migration applied to its data, not a whole build.
    built = re.search(rf"seeding (qw_seed_[0-9a-f]{{12}}) \({base_template} \+ 1 migration item\(s\)\)", result.output)
    assert built is not None, result.output
    assert not server.exists(template_name(head_seed))
    drop_template(server, built.group(1))  # unique to this test: not left to pile up


def test_a_schema_file_edited_in_place_is_built_whole(project: Path) -> None:
    with exported("main", project) as revision:
        base_seed = Seed(("seed.sql",), 1.0, revision.project, ("schema.sql",))
        (project / "schema.sql").write_text(SCHEMA + "CREATE INDEX accounts_balance_idx ON accounts (balance);\n")
        assert migrations_onto(base_seed, Seed(("seed.sql",), 1.0, project, ("schema.sql",))) is None
        (project / "schema.sql").write_text(SCHEMA)
        (project / "extra.sql").write_text("CREATE INDEX accounts_balance_idx ON accounts (balance);\n")
        assert migrations_onto(base_seed, Seed(("seed.sql",), 1.0, project, ("schema.sql", "extra.sql"))) == ("extra.sql",)
        assert migrations_onto(base_seed, Seed(("seed.sql",), 2.0, project, ("schema.sql", "extra.sql"))) is None  # other data
        assert migrations_onto(base_seed, Seed(("seed.sql",), 1.0, project, ("schema.sql",))) is None  # nothing to add


def test_an_unknown_base_is_one_line_and_exit_2(project: Path) -> None:
    result = CliRunner().invoke(main, ["check", "--base", "origin/nowhere"])
    assert result.exit_code == 2
    assert "--base origin/nowhere: no such revision in the repository" in result.output
    assert "fetch-depth: 0" in result.output
    assert "Traceback" not in result.output


def test_outside_a_git_repository_base_is_refused(tmp_path: Path, pg_dsn: str, monkeypatch: pytest.MonkeyPatch) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    write_project(plain)
    monkeypatch.chdir(plain)
    monkeypatch.setenv("QUERYWARDEN_DSN", pg_dsn)
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    result = CliRunner().invoke(main, ["check", "--base", "main"])
    assert result.exit_code == 2
    assert "is not inside a git repository" in result.output


def test_a_base_without_a_seed_is_refused(project: Path) -> None:
    (project / "pyproject.toml").write_text('[tool.querywarden]\ncatalog = ["queries.sql"]\n')
    git(project, "commit", "-q", "-am", "no seed")
    git(project, "branch", "-q", "-f", "main")
    write_project(project)
    result = CliRunner().invoke(main, ["check", "--base", "main"])
    assert result.exit_code == 2
    assert "sets no `seed` or `schema`" in result.output


def test_a_link_out_of_the_base_tree_is_not_exported(project: Path, tmp_path: Path) -> None:
    secret = tmp_path / "outside.txt"
    secret.write_text("not the project's")
    (project / "schema_link.sql").symlink_to(secret)
    (project / "inside_link.sql").symlink_to("schema.sql")
    git(project, "add", "-A")
    git(project, "commit", "-q", "-m", "links")
    with exported("HEAD", project) as revision:
        assert not (revision.project / "schema_link.sql").exists()
        assert (revision.project / "inside_link.sql").read_text() == SCHEMA
        assert (revision.project / "queries.sql").read_text() == CATALOG
