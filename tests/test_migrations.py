"""Migrations as the schema: `django:`, `alembic:` and `sql-migrations:` schema items on a real PostgreSQL.

Each style has a tiny project under tests/migration_projects/ (one table, the index a hot query uses),
copied to a temporary directory so a test can add migrations to it. The template builds from the
migrations; a new migration that drops the index builds another template and the real CLI blocks the
hot query; a new migration adding an unrelated column builds another and passes; bad declarations and
failing migrations exit 2 with one line, never a traceback.
"""

from __future__ import annotations

import json
import re
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner, Result

from querywarden.cli import main
from querywarden.config import Setting, resolve
from querywarden.database import Server
from querywarden.errors import ConfigError
from querywarden.seeding.migrations import SqlMigrations
from querywarden.seeding.seed import Seed, drop_template, ensure_migrated_template, ensure_template, migrations_onto, template_name

PROJECTS = Path(__file__).resolve().parent / "migration_projects"
CATALOG = PROJECTS / "queries.sql"
STYLES = ("django", "alembic", "sql")

# What each style's new migration says, by what it does: (file name, contents).
_DJANGO_MIGRATION = '''from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("shop", "0001_initial")]
    operations = [{operation}]
'''
_ALEMBIC_MIGRATION = '''"""{name}"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    {operation}
'''
_MIGRATIONS = {
    "django": {
        "drop_index": ("0002_drop_customer_index.py", 'migrations.RemoveIndex(model_name="order", name="orders_customer_idx")'),
        "add_column": ("0002_order_note.py",
                       'migrations.AddField(model_name="order", name="note", field=models.TextField(null=True))'),
        "broken": ("0002_broken.py", 'migrations.RunSQL("ALTER TABLE missing_table ADD COLUMN x integer")'),
    },
    "alembic": {
        "drop_index": ("0002_drop_customer_index.py", 'op.drop_index("orders_customer_idx", table_name="orders")'),
        "add_column": ("0002_order_note.py", 'op.add_column("orders", sa.Column("note", sa.Text()))'),
        "broken": ("0002_broken.py", 'op.execute("ALTER TABLE missing_table ADD COLUMN x integer")'),
    },
    # Numbered past 9: in plain name order 10_… would run before 1_orders.sql and fail.
    "sql": {
        "drop_index": ("10_drop_customer_index.sql", "DROP INDEX orders_customer_idx;\n"),
        "add_column": ("10_order_note.sql", "ALTER TABLE orders ADD COLUMN note text;\n"),
        "broken": ("10_broken.sql", "ALTER TABLE missing_table ADD COLUMN x integer;\n"),
    },
}


@dataclass
class Project:
    """A copy of one style's project, its schema item, and a seed whose data is this test's own."""

    style: str
    root: Path
    seed_sql: Path

    @property
    def item(self) -> str:
        return {
            "django": f"django:shop_site.settings@{self.root}",
            "alembic": f"alembic:{self.root / 'alembic.ini'}",
            "sql": f"sql-migrations:{self.root / 'migrations'}",
        }[self.style]

    @property
    def migrations_dir(self) -> Path:
        return {
            "django": self.root / "shop" / "migrations",
            "alembic": self.root / "migrations" / "versions",
            "sql": self.root / "migrations",
        }[self.style]

    def seed(self, *schema: str) -> Seed:
        return Seed((self.seed_sql.name,), 1.0, self.seed_sql.parent, schema=schema or (self.item,))

    def args(self) -> list[str]:
        return ["--schema", self.item, "--seed", str(self.seed_sql), "--scale", "1"]

    def add(self, kind: str) -> Path:
        """Add the style's migration that does `kind` (drop_index, add_column, broken)."""
        name, operation = _MIGRATIONS[self.style][kind]
        if self.style == "django":
            text = _DJANGO_MIGRATION.format(operation=operation)
        elif self.style == "alembic":
            text = _ALEMBIC_MIGRATION.format(name=kind, operation=operation)
        else:
            text = operation
        path = self.migrations_dir / name
        path.write_text(text)
        return path


@pytest.fixture(autouse=True)
def outside_the_repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run where no pyproject.toml supplies a seed or catalog."""
    monkeypatch.chdir(tmp_path)


def make_project(style: str, where: Path) -> Project:
    root = where / style
    shutil.copytree(PROJECTS / style, root, ignore=shutil.ignore_patterns("__pycache__"))
    seed_sql = where / "data" / "seed.sql"
    seed_sql.parent.mkdir()
    # A data set of this run's own: its templates are no other run's, and this test drops them.
    seed_sql.write_text(f"-- run {uuid.uuid4().hex}\n" + (PROJECTS / "seed.sql").read_text())
    return Project(style, root, seed_sql)


@pytest.fixture
def built(server: Server) -> Iterator[list[str]]:
    """Names of the seeded templates a test had built; dropped after it."""
    names: list[str] = []
    yield names
    for name in names:
        drop_template(server, name)
        server.drop(f"{name}_building")


def invoke(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def seeded(result: Result, built: list[str]) -> str:
    """The seeded template a CLI run built or reused (its name is the seed's fingerprint), to drop after the test."""
    found = re.search(r"(?:seeding|reusing seeded template) (qw_seed_[0-9a-f]+)", result.output + result.stderr)
    assert found, result.output + result.stderr
    built.append(found.group(1))
    return found.group(1)


def indexes(server: Server, database: str) -> list[str]:
    with psycopg.connect(server.dsn_for(database)) as conn:
        found = conn.execute("SELECT indexname FROM pg_indexes WHERE tablename = 'orders' ORDER BY 1").fetchall()
        assert conn.execute("SELECT count(*) FROM orders").fetchone() == (20_000,)
    return [name for (name,) in found]


def columns(server: Server, database: str) -> list[str]:
    with psycopg.connect(server.dsn_for(database)) as conn:
        found = conn.execute("SELECT column_name FROM information_schema.columns WHERE table_name = 'orders' "
                             "ORDER BY ordinal_position").fetchall()
    return [name for (name,) in found]


def exists(server: Server, database: str) -> bool:
    with server.admin() as admin:
        return admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,)).fetchone() is not None


@pytest.mark.parametrize("style", STYLES)
def test_migrations_build_the_template_and_a_dropped_index_blocks(
    style: str, tmp_path: Path, pg_dsn: str, server: Server, built: list[str]
) -> None:
    project = make_project(style, tmp_path)
    baselines = tmp_path / "baselines"

    # 1. the template builds from the migrations: the table, its index and the seed's rows are in it
    recorded = invoke("update", "--catalog", str(CATALOG), "--baselines", str(baselines), "--dsn", pg_dsn, *project.args())
    first = seeded(recorded, built)
    assert recorded.exit_code == 0, recorded.output + recorded.stderr
    assert exists(server, first)
    assert indexes(server, first) == ["orders_customer_idx", "orders_pkey"]
    assert (baselines / "orders_of_customer.json").is_file()

    # 2. a new migration dropping the index the hot query uses: another template, and the check blocks
    dropping = project.add("drop_index")
    results = tmp_path / "blocked.json"
    result = invoke("check", "--catalog", str(CATALOG), "--baselines", str(baselines), "--dsn", pg_dsn,
                    "--json", str(results), *project.args())
    second = seeded(result, built)
    assert second != first
    assert result.exit_code == 1, result.output + result.stderr
    assert "querywarden: BLOCKED" in result.output
    assert "orders_of_customer" in result.output
    assert {q["name"]: q["verdict"] for q in json.loads(results.read_text())["queries"]} == {"orders_of_customer": "fail"}
    assert indexes(server, second) == ["orders_pkey"]

    # 3. instead, a new migration adding an unrelated column: another template again, and the check passes
    dropping.unlink()
    project.add("add_column")
    result = invoke("check", "--catalog", str(CATALOG), "--baselines", str(baselines), "--dsn", pg_dsn, *project.args())
    third = seeded(result, built)
    assert third not in (first, second)
    assert result.exit_code == 0, result.output + result.stderr
    assert "note" in columns(server, third)
    assert indexes(server, third) == ["orders_customer_idx", "orders_pkey"]


@pytest.mark.parametrize("style", STYLES)
def test_the_fingerprint_is_the_files_contents_not_where_they_are(style: str, tmp_path: Path) -> None:
    one, other = make_project(style, tmp_path / "one"), make_project(style, tmp_path / "other")
    shutil.copy(one.seed_sql, other.seed_sql)
    fingerprint = one.seed().fingerprint()
    assert other.seed().fingerprint() == fingerprint
    assert one.seed().data_fingerprint() == one.seed(str(PROJECTS / "sql" / "migrations" / "1_orders.sql")).data_fingerprint()
    # an edited migration is another schema, even with the same file names
    migration = next(p for p in other.migrations_dir.iterdir() if p.name.startswith(("0001", "1_")))
    migration.write_text(migration.read_text() + "\n-- reviewed\n" if style == "sql" else migration.read_text() + "\n# reviewed\n")
    assert other.seed().fingerprint() != fingerprint


def test_a_django_project_dir_defaults_to_the_seeds_directory(tmp_path: Path) -> None:
    project = make_project("django", tmp_path)
    relative = Seed(("seed.sql",), 1.0, project.root, schema=("django:shop_site.settings",))
    shutil.copy(project.seed_sql, project.root / "seed.sql")
    explicit = Seed(("seed.sql",), 1.0, project.root, schema=(f"django:shop_site.settings@{project.root}",))
    assert relative.fingerprint() == explicit.fingerprint()


@pytest.mark.parametrize(
    ("names", "ordered"),
    [
        (["10_y.sql", "2_x.sql", "1_a.sql"], ["1_a.sql", "2_x.sql", "10_y.sql"]),
        (["V10__c.sql", "V2__b.sql", "V1__a.sql"], ["V1__a.sql", "V2__b.sql", "V10__c.sql"]),
        (["0010_c.sql", "0002_b.sql", "0001_a.sql"], ["0001_a.sql", "0002_b.sql", "0010_c.sql"]),
        (["20240102_b.sql", "20231231_z.sql", "20240101_a.sql"], ["20231231_z.sql", "20240101_a.sql", "20240102_b.sql"]),
    ],
)
def test_sql_migrations_run_in_numeric_name_order(tmp_path: Path, names: list[str], ordered: list[str]) -> None:
    for name in names:
        (tmp_path / name).write_text("SELECT 1;\n")
    (tmp_path / "notes.txt").write_text("not a migration")
    migrations = SqlMigrations("sql-migrations:.", tmp_path, lambda conn, path, progress: 0)
    assert [name for name, _ in migrations.files()] == ordered


def test_an_empty_migrations_directory_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="holds no .sql files"):
        Seed((), schema=(f"sql-migrations:{tmp_path}",)).fingerprint()


def _bad_item(case: str, tmp_path: Path) -> str:
    project = make_project("django" if case.startswith("django") else "alembic", tmp_path)
    (tmp_path / "empty").mkdir()
    return {
        "django-settings": f"django:nope.settings@{project.root}",
        "django-dir": f"django:shop_site.settings@{tmp_path / 'missing'}",
        "django-empty": "django:",
        "alembic-ini": f"alembic:{tmp_path / 'missing' / 'alembic.ini'}",
        "sql-dir": f"sql-migrations:{tmp_path / 'missing'}",
        "sql-empty": f"sql-migrations:{tmp_path / 'empty'}",
    }[case]


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("django-settings", "settings module nope.settings not found in "),
        ("django-dir", "project directory "),
        ("django-empty", "name the settings module as django:<settings module>"),
        ("alembic-ini", "alembic.ini does not exist; point alembic: at the project's alembic.ini"),
        ("sql-dir", "does not exist; point sql-migrations: at the directory"),
        ("sql-empty", "holds no .sql files"),
    ],
)
def test_a_bad_declaration_exits_2_with_one_line(case: str, message: str, tmp_path: Path, pg_dsn: str) -> None:
    item = _bad_item(case, tmp_path)
    result = invoke("check", "--catalog", str(CATALOG), "--baselines", str(tmp_path / "baselines"), "--dsn", pg_dsn,
                    "--schema", item, "--seed", str(PROJECTS / "seed.sql"))
    assert result.exit_code == 2, result.output + result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith(f"querywarden: error: schema item {item!r}: "), result.stderr
    assert message in last
    assert "Traceback" not in result.output + result.stderr


@pytest.mark.parametrize(
    ("style", "named"),
    [("django", "migration shop.0002_broken failed: "), ("alembic", "migration 0002 (0002_broken.py) failed: "),
     ("sql", "10_broken.sql statement 1 failed: ")],
)
def test_a_failing_migration_exits_2_naming_it(
    style: str, named: str, tmp_path: Path, pg_dsn: str, server: Server, built: list[str]
) -> None:
    project = make_project(style, tmp_path)
    project.add("broken")
    result = invoke("check", "--catalog", str(CATALOG), "--baselines", str(tmp_path / "baselines"), "--dsn", pg_dsn,
                    *project.args())
    name = seeded(result, built)
    assert result.exit_code == 2, result.output + result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("querywarden: error: "), result.stderr
    assert named in last and 'relation "missing_table" does not exist' in last, last
    assert "Traceback" not in result.output + result.stderr
    assert not exists(server, name) and not exists(server, f"{name}_building")


@pytest.mark.parametrize(("style", "module"), [("django", "django"), ("alembic", "alembic")])
def test_without_django_or_alembic_installed_it_says_so(
    style: str, module: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The migrations run in a subprocess of this Python: one where the package cannot be imported."""
    project = make_project(style, tmp_path)
    shadow = tmp_path / "shadow" / module
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text(f"raise ImportError('no {module} here')\n")
    monkeypatch.setenv("PYTHONPATH", str(shadow.parent))
    with pytest.raises(ConfigError) as raised:
        project.seed().fingerprint()
    message = str(raised.value)
    assert message.startswith(f"schema item {project.item!r}: ")
    assert f"(pip install {module})" in message and "\n" not in message


def test_schema_items_set_elsewhere_than_the_seed_keep_their_own_directory(tmp_path: Path) -> None:
    """Schema from one file (a pytest ini), seed from another directory: the paths stay the schema's."""
    project = make_project("sql", tmp_path)
    schema = ("sql-migrations:migrations", "django:shop_site.settings", "django:site.settings@app", "alembic:alembic.ini")
    resolved = resolve([{"schema": Setting(schema, "querywarden_schema in pytest.ini", project.root),
                         "seed": Setting((project.seed_sql.name,), "--seed", project.seed_sql.parent)}], tmp_path)
    seed = resolved.seed()
    assert seed is not None and seed.base_dir == project.seed_sql.parent
    assert seed.schema == ("sql-migrations:../sql/migrations", "django:shop_site.settings@../sql",
                           "django:site.settings@../sql/app", "alembic:../sql/alembic.ini")
    assert Seed(seed.items, 1.0, seed.base_dir, schema=seed.schema[:1]).fingerprint() == project.seed().fingerprint()


_DJANGO_SPY = '''import json
import os

from django.db import connections, migrations


def record(apps, schema_editor):
    seen = {
        "databases": sorted({connections[alias].settings_dict["NAME"] for alias in connections}),
        "options": sorted(connections["default"].settings_dict["OPTIONS"]),
        "environment": sorted(k for k in os.environ if k.startswith(("PG", "QUERYWARDEN"))),
        "settings": os.environ.get("DJANGO_SETTINGS_MODULE"),
    }
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("CREATE TABLE seen (what jsonb)")
        cursor.execute("INSERT INTO seen VALUES (%s)", [json.dumps(seen)])


class Migration(migrations.Migration):
    dependencies = [("shop", "0001_initial")]
    operations = [migrations.RunPython(record)]
'''
_ALEMBIC_SPY = '''"""spy"""

import json
import os

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"


def upgrade() -> None:
    seen = {
        "databases": [op.get_bind().engine.url.database],
        "options": [],
        "environment": sorted(k for k in os.environ if k.startswith(("PG", "QUERYWARDEN"))),
        "settings": os.environ.get("DJANGO_SETTINGS_MODULE"),
    }
    op.execute("CREATE TABLE seen (what jsonb)")
    op.get_bind().execute(sa.text("INSERT INTO seen VALUES (:what)"), {"what": json.dumps(seen)})
'''


@pytest.mark.parametrize("style", ["django", "alembic"])
def test_the_migrations_are_given_the_template_and_nothing_else(
    style: str, tmp_path: Path, server: Server, pg_dsn: str, built: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whatever the project's settings and the caller's environment name, the migrations reach the template only."""
    project = make_project(style, tmp_path)
    (project.migrations_dir / "0002_spy.py").write_text(_DJANGO_SPY if style == "django" else _ALEMBIC_SPY)
    for name, value in {"QUERYWARDEN_DSN": pg_dsn, "PGDATABASE": "postgres", "PGAPPNAME": "caller",
                        "DJANGO_SETTINGS_MODULE": "caller.settings"}.items():
        monkeypatch.setenv(name, value)
    name = ensure_template(server, project.seed())
    built.append(name)
    with psycopg.connect(server.dsn_for(name)) as conn:
        row = conn.execute("SELECT what FROM seen").fetchone()
    assert row is not None
    seen = row[0]
    assert seen["databases"] == [f"{name}_building"]  # every Django alias: the template being built
    assert "service" not in seen["options"]  # the settings' own OPTIONS pointed at a service elsewhere
    assert seen["environment"] == []
    assert seen["settings"] == ("shop_site.settings" if style == "django" else None)


@pytest.mark.parametrize("style", STYLES)
def test_a_head_that_adds_a_migration_is_the_base_template_migrated(style: str, tmp_path: Path, server: Server, built: list[str]) -> None:
    """Against a base revision, the head's new migration runs on a copy of the base's seeded template, on
    its data, as production applies it: Django and Alembic rerun apply only what is new; a directory of
    SQL files reruns every file, so it is built whole."""
    base, head = make_project(style, tmp_path / "base"), make_project(style, tmp_path / "head")
    shutil.copy(base.seed_sql, head.seed_sql)  # the same data on both sides
    item = {"django": f"django:shop_site.settings@{style}", "alembic": f"alembic:{style}/alembic.ini",
            "sql": f"sql-migrations:{style}/migrations"}[style]
    base_seed = Seed(("data/seed.sql",), 1.0, tmp_path / "base", schema=(item,))
    head.add("drop_index")
    head_seed = Seed(("data/seed.sql",), 1.0, tmp_path / "head", schema=(item,))
    if style == "sql":
        assert migrations_onto(base_seed, head_seed) is None
        return
    assert migrations_onto(base_seed, head_seed) == (item,)
    built.append(ensure_template(server, base_seed))
    migrated = ensure_migrated_template(server, base_seed, head_seed)
    assert migrated is not None and migrated != template_name(head_seed)
    built.append(migrated)
    assert indexes(server, migrated) == ["orders_pkey"]  # the base's 20,000 rows, the index dropped on them
    # A migration of the base edited in the head is no migration production would run: built whole.
    first = next(path for path in head.migrations_dir.iterdir() if path.name.startswith("0001"))
    first.write_text(first.read_text() + "\n# edited\n")
    assert migrations_onto(base_seed, Seed(("data/seed.sql",), 1.0, tmp_path / "head", schema=(item,))) is None
