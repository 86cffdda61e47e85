"""Seeded-template housekeeping: the last use each template records, listing them, and pruning old ones;
and the clones and measuring roles a run killed by a signal leaves behind.

Every test works on templates, clones and roles of its own (a seed with a unique comment, names
with fresh hex digits) and names them when it prunes, so it never lists into, or drops, another
run's on a shared server.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner, Result
from psycopg import sql

from querywarden.cli import main
from querywarden.cli.templates import parse_duration
from psycopg.conninfo import make_conninfo

from querywarden.database import Server, dbname_of
from querywarden.errors import ConfigError
from querywarden.seeding.seed import (
    BUILD_LOCK_CLASS,
    RECORD_EVERY,
    Seed,
    Usage,
    drop_template,
    ensure_template,
    read_usage,
    template_name,
    usage_comment,
)
from querywarden.seeding.templates import list_clones, list_roles, list_templates, prune_templates

LONG_AGO = datetime(2001, 2, 3, 4, 5, 6, tzinfo=timezone.utc)
WEEK = timedelta(days=7)


def invoke(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


class Templates:
    """Builds seeded templates of this test's own and drops every one (and its _building database) after."""

    def __init__(self, server: Server, directory: Path) -> None:
        self.server = server
        self.directory = directory
        self.names: list[str] = []

    def seed(self) -> Seed:
        directory = self.directory / uuid.uuid4().hex[:8]
        directory.mkdir()
        (directory / "schema.sql").write_text(
            f"-- {uuid.uuid4()}\nCREATE TABLE t (id int);\nINSERT INTO t SELECT generate_series(1, 100);\n", encoding="utf-8"
        )
        seed = Seed((), 1.0, directory, schema=("schema.sql",))
        self.names.append(template_name(seed))
        return seed

    def build(self) -> str:
        return ensure_template(self.server, self.seed())

    def leftover(self) -> str:
        """A `_building` database as an interrupted build leaves it."""
        name = f"{template_name(self.seed())}_building"
        self.server.create(name)
        return name

    def comment(self, name: str, text: str | None) -> None:
        with self.server.admin() as admin:
            admin.execute(sql.SQL("COMMENT ON DATABASE {} IS {}").format(sql.Identifier(name), sql.Literal(text)))

    def usage(self, name: str) -> Usage | None:
        with self.server.admin() as admin:
            row = admin.execute(
                "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = %s", (name,)
            ).fetchone()
        assert row is not None, f"{name} does not exist"
        return read_usage(row[0])

    def exists(self, name: str) -> bool:
        return self.server.exists(name)

    def drop_all(self) -> None:
        for name in self.names:
            drop_template(self.server, f"{name}_building")
            drop_template(self.server, name)


@pytest.fixture
def ours(server: Server, tmp_path: Path) -> Iterator[Templates]:
    templates = Templates(server, tmp_path)
    try:
        yield templates
    finally:
        templates.drop_all()


def server_now(server: Server) -> datetime:
    with server.admin() as admin:
        row = admin.execute("SELECT now()").fetchone()
    assert row is not None
    now: datetime = row[0]
    return now.astimezone(timezone.utc).replace(microsecond=0)  # recorded times keep whole seconds


def test_a_build_records_its_scale_build_and_last_use(server: Server, ours: Templates) -> None:
    before = server_now(server)
    name = ours.build()
    usage = ours.usage(name)
    assert usage is not None and usage.scale == 1.0
    assert usage.built_at is not None and usage.built_at >= before
    assert usage.last_used_at == usage.built_at


def test_each_reuse_records_the_last_use_and_keeps_the_build_time(server: Server, ours: Templates) -> None:
    seed = ours.seed()
    name = ensure_template(server, seed)
    ours.comment(name, usage_comment(Usage(1.0, LONG_AGO, LONG_AGO)))
    before = server_now(server)
    said: list[str] = []
    assert ensure_template(server, seed, said.append) == name
    usage = ours.usage(name)
    assert usage is not None and usage.built_at == LONG_AGO
    assert usage.last_used_at is not None and usage.last_used_at >= before
    assert said == [f"reusing seeded template {name}"]  # recording the use says nothing


def test_a_reuse_soon_after_the_recorded_one_writes_nothing(server: Server, ours: Templates) -> None:
    seed = ours.seed()
    name = ensure_template(server, seed)
    built = ours.usage(name)
    ensure_template(server, seed)  # well within RECORD_EVERY of the build
    assert ours.usage(name) == built
    assert RECORD_EVERY == timedelta(minutes=10)


def test_a_reuse_does_not_wait_on_a_template_being_cloned(server: Server, ours: Templates) -> None:
    """CREATE DATABASE ... TEMPLATE holds a lock on the template that COMMENT waits for; a reuse waits a
    second at most (lock_timeout), then leaves the record alone. Another session's uncommitted COMMENT
    holds such a lock here."""
    seed = ours.seed()
    name = ensure_template(server, seed)
    ours.comment(name, usage_comment(Usage(1.0, LONG_AGO, LONG_AGO)))
    said: list[str] = []
    with psycopg.connect(server.dsn) as other:
        other.execute(sql.SQL("COMMENT ON DATABASE {} IS 'held'").format(sql.Identifier(name)))  # left uncommitted
        assert ensure_template(server, seed, said.append) == name
        other.rollback()
    assert said == [f"reusing seeded template {name}"]
    assert ours.usage(name) == Usage(1.0, LONG_AGO, LONG_AGO)


def test_a_template_of_an_older_querywarden_records_its_use_from_its_next_reuse(server: Server, ours: Templates) -> None:
    seed = ours.seed()
    name = ensure_template(server, seed)
    ours.comment(name, None)  # as an older querywarden left it
    assert ours.usage(name) is None
    ensure_template(server, seed)
    usage = ours.usage(name)
    assert usage is not None and usage.built_at is None and usage.last_used_at is not None and usage.scale == 1.0


def test_the_record_is_one_line_of_json() -> None:
    text = usage_comment(Usage(10.0, LONG_AGO, None))
    assert text == (
        '{"querywarden": "querywarden seeded template", "scale": 10.0, '
        '"built_at": "2001-02-03T04:05:06Z", "last_used_at": null}'
    )
    assert read_usage(text) == Usage(10.0, LONG_AGO, None)
    for foreign in (None, "", "made by hand", "[1, 2]", '{"scale": 1}', '{"querywarden": "something else"}'):
        assert read_usage(foreign) is None, foreign


def test_listing_shows_our_templates_and_leftover_builds(server: Server, ours: Templates) -> None:
    built, unrecorded, leftover = ours.build(), ours.build(), ours.leftover()
    ours.comment(unrecorded, None)
    found = {item.name: item for item in list_templates(server) if item.name in (built, unrecorded, leftover)}
    assert sorted(found) == sorted([built, unrecorded, leftover])
    assert all(item.size_bytes > 0 for item in found.values())
    usage, idle = found[built].usage, found[built].idle
    assert usage is not None and usage.scale == 1.0
    assert idle is not None and idle < WEEK and not found[built].building
    assert found[unrecorded].usage is None and found[unrecorded].idle is None
    assert found[leftover].building and found[leftover].template == leftover.removesuffix("_building")
    assert all(item.busy is None for item in found.values())
    assert [item.name for item in list_templates(server, [built])] == [built]


def test_prune_drops_only_what_has_been_unused_for_longer_than_the_age(server: Server, ours: Templates) -> None:
    old, fresh, unrecorded, leftover = ours.build(), ours.build(), ours.build(), ours.leftover()
    ours.comment(old, usage_comment(Usage(1.0, LONG_AGO, LONG_AGO)))
    ours.comment(unrecorded, None)
    sizes = {item.name: item.size_bytes for item in list_templates(server, [old, leftover])}
    heard: list[str] = []
    results = prune_templates(server, WEEK, names=[old, fresh, unrecorded, leftover], on_result=lambda r: heard.append(r.name))
    outcome = {r.name: (r.action, r.reason) for r in results}
    assert heard == sorted(outcome) == sorted([old, fresh, unrecorded, leftover])
    assert outcome[old][0] == "dropped" and re.fullmatch(r"unused for \d+ d", outcome[old][1])
    assert outcome[leftover] == ("dropped", "left by an interrupted build")
    assert outcome[fresh][0] == "kept" and re.fullmatch(r"last used \d+ s ago", outcome[fresh][1])
    assert outcome[unrecorded] == (
        "kept", "last use not recorded (built by an older querywarden); --include-unrecorded prunes it"
    )
    assert {r.name: r.size_bytes for r in results if r.action == "dropped"} == sizes
    assert not ours.exists(old) and not ours.exists(leftover)
    assert ours.exists(fresh) and ours.exists(unrecorded)

    again = prune_templates(server, WEEK, include_unrecorded=True, names=[fresh, unrecorded])
    assert [(r.name, r.action) for r in again] == sorted([(fresh, "kept"), (unrecorded, "dropped")])
    assert ours.exists(fresh) and not ours.exists(unrecorded)


def test_a_dry_run_drops_nothing(server: Server, ours: Templates) -> None:
    old, leftover = ours.build(), ours.leftover()
    ours.comment(old, usage_comment(Usage(1.0, LONG_AGO, LONG_AGO)))
    results = prune_templates(server, WEEK, dry_run=True, names=[old, leftover])
    assert [(r.name, r.action) for r in results] == sorted([(old, "would drop"), (leftover, "would drop")])
    assert ours.exists(old) and ours.exists(leftover)


def test_prune_skips_what_a_build_holds_the_lock_of_from_any_database(
    server: Server, ours: Templates, scratch_db: str
) -> None:
    """A run building (or reusing) a template holds its advisory lock in its DSN's database, maybe another one."""
    old, leftover = ours.build(), ours.leftover()
    ours.comment(old, usage_comment(Usage(1.0, LONG_AGO, LONG_AGO)))
    building = leftover.removesuffix("_building")
    with psycopg.connect(server.dsn, autocommit=True) as here, psycopg.connect(scratch_db, autocommit=True) as elsewhere:
        here.execute("SELECT pg_advisory_lock(%s, hashtext(%s))", (BUILD_LOCK_CLASS, old))
        elsewhere.execute("SELECT pg_advisory_lock(%s, hashtext(%s))", (BUILD_LOCK_CLASS, building))
        results = prune_templates(server, timedelta(0), names=[old, leftover])
        assert {r.name: (r.action, r.reason) for r in results} == {
            old: ("skipped", "in use: a run holds its build lock"),
            leftover: ("skipped", "being built"),
        }
        assert ours.exists(old) and ours.exists(leftover)
        here.execute("SELECT pg_advisory_unlock_all()")
        elsewhere.execute("SELECT pg_advisory_unlock_all()")
    # the builds are over: now both go
    results = prune_templates(server, timedelta(0), names=[old, leftover])
    assert [r.action for r in results] == ["dropped", "dropped"]
    assert not ours.exists(old) and not ours.exists(leftover)


def test_prune_skips_a_template_someone_is_connected_to(server: Server, ours: Templates) -> None:
    old = ours.build()
    ours.comment(old, usage_comment(Usage(1.0, LONG_AGO, LONG_AGO)))
    with psycopg.connect(server.dsn_for(old)):
        results = prune_templates(server, WEEK, names=[old])
    assert [(r.action, r.reason) for r in results] == [("skipped", "in use: 1 session connected to it")]
    assert ours.exists(old)


def test_the_cli_lists_and_prunes_named_templates(server: Server, ours: Templates, pg_dsn: str) -> None:
    old, fresh = ours.build(), ours.build()
    ours.comment(old, usage_comment(Usage(0.5, LONG_AGO, LONG_AGO)))
    listed = invoke("templates", "--dsn", pg_dsn, old, fresh)
    assert listed.exit_code == 0, listed.output + listed.stderr
    header, *rows, total = listed.stdout.splitlines()
    assert re.fullmatch(r"seeded database\s+size\s+scale\s+built \(UTC\)\s+last used \(UTC\)", header)
    by_name = {row.split()[0]: row for row in rows}  # in name order
    assert list(by_name) == sorted([old, fresh])
    assert re.fullmatch(rf"{old}\s+[\d.]+ (kB|MB)\s+0.5\s+2001-02-03 04:05\s+2001-02-03 04:05\s+idle \d+ d", by_name[old])
    assert re.fullmatch(rf"{fresh}\s+[\d.]+ (kB|MB)\s+1\s+\S+ \S+\s+\S+ \S+\s+idle \d+ s", by_name[fresh])
    assert re.fullmatch(r"2 seeded databases, [\d.]+ (kB|MB) in all; .*", total)
    assert listed.stderr.startswith("database: postgresql://postgres@")

    preview = invoke("templates", "--dsn", pg_dsn, "--prune", "--dry-run", "--unused-for", "2w", old, fresh)
    assert preview.exit_code == 0 and ours.exists(old)
    assert preview.stdout.splitlines()[-1].startswith("would drop 1 database and free ")

    pruned = invoke("templates", "--dsn", pg_dsn, "--prune", "--unused-for", "2w", old, fresh)
    assert pruned.exit_code == 0, pruned.output + pruned.stderr
    *rows, total = pruned.stdout.splitlines()
    by_name = {row.split()[1]: row for row in rows}
    assert list(by_name) == sorted([old, fresh])
    assert re.fullmatch(rf"dropped\s+{old}\s+[\d.]+ (kB|MB)\s+unused for \d+ d", by_name[old])
    assert re.fullmatch(rf"kept\s+{fresh}\s+[\d.]+ (kB|MB)\s+last used \d+ s ago", by_name[fresh])
    assert re.fullmatch(r"dropped 1 database, freed [\d.]+ (kB|MB); kept 1", total)
    assert not ours.exists(old) and ours.exists(fresh)


class Leftovers:
    """Clones and measuring roles as a run killed by SIGTERM leaves them, made by hand; all gone after the test."""

    def __init__(self, server: Server, scratch: str) -> None:
        self.server = server
        self.scratch = scratch  # a database the roles hold grants in
        self.databases: list[str] = []
        self.roles: list[str] = []

    def clone(self, prefix: str) -> str:
        name = f"{prefix}_{uuid.uuid4().hex[:10]}"
        self.server.create(name)
        self.databases.append(name)
        return name

    def role(self) -> str:
        """A login role with grants in the scratch database, on one of its tables and on the database itself."""
        name = f"qw_measure_{uuid.uuid4().hex[:10]}"
        who = sql.Identifier(name)
        with self.server.admin() as admin:
            admin.execute(sql.SQL("CREATE ROLE {} LOGIN").format(who))
        self.roles.append(name)
        with psycopg.connect(self.scratch, autocommit=True) as conn:
            conn.execute("CREATE TABLE IF NOT EXISTS measured (id int)")
            conn.execute(sql.SQL("GRANT SELECT, INSERT ON measured TO {}").format(who))
            conn.execute(sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(sql.Identifier(dbname_of(self.scratch)), who))
        return name

    def login(self, role: str) -> psycopg.Connection[tuple[object, ...]]:
        return psycopg.connect(make_conninfo(self.scratch, user=role))

    def role_exists(self, name: str) -> bool:
        with self.server.admin() as admin:
            return admin.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (name,)).fetchone() is not None

    def drop_all(self) -> None:
        with self.server.admin() as admin:
            for name in self.databases:
                admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
            for name in self.roles:
                if self.role_exists(name):
                    with psycopg.connect(self.scratch, autocommit=True) as conn:
                        conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(name)))
                    admin.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(name)))
                    admin.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(name)))


@pytest.fixture
def leftovers(server: Server, scratch_db: str) -> Iterator[Leftovers]:
    made = Leftovers(server, scratch_db)
    try:
        yield made
    finally:
        made.drop_all()  # before scratch_db is dropped: a role's grants there are revoked first


def test_the_cli_lists_and_prunes_orphaned_clones_and_measuring_roles(
    server: Server, leftovers: Leftovers, pg_dsn: str
) -> None:
    """What SIGTERM leaves goes; a clone a session is connected to, or a role one is logged in as, stays."""
    orphan, connected = leftovers.clone("qw_run"), leftovers.clone("qw_write")
    role, logged_in = leftovers.role(), leftovers.role()
    scratch = dbname_of(leftovers.scratch)
    names = [orphan, connected, role, logged_in]
    with psycopg.connect(server.dsn_for(connected)), leftovers.login(logged_in):
        listed = invoke("templates", "--dsn", pg_dsn, *names)
        assert listed.exit_code == 0, listed.output + listed.stderr
        lines = listed.stdout.splitlines()
        assert re.fullmatch(r"clone database\s+size", lines[0])
        by_name = {line.split()[0]: line for line in lines}
        assert re.fullmatch(rf"{orphan}\s+[\d.]+ (kB|MB)\s+orphaned: no session connected to it; --prune drops it", by_name[orphan])
        assert re.fullmatch(rf"{connected}\s+[\d.]+ (kB|MB)\s+in use: 1 session connected to it", by_name[connected])
        assert re.fullmatch(r"2 clone databases, 1 orphaned \([\d.]+ (kB|MB)\); `querywarden templates --prune` drops those",
                            lines[3])
        assert lines[4] == "measuring role"
        assert by_name[role] == f"{role}  orphaned: no session logged in as it; --prune drops it (holds grants or objects in {scratch})"
        assert re.fullmatch(rf"{logged_in}\s+in use: 1 session logged in as it", by_name[logged_in])
        assert lines[-1] == "2 measuring roles, 1 orphaned; `querywarden templates --prune` drops those"

        preview = invoke("templates", "--dsn", pg_dsn, "--prune", "--dry-run", *names)
        assert preview.exit_code == 0, preview.output + preview.stderr
        assert preview.stdout.splitlines()[-1].startswith("would drop 1 database and 1 role and free ")
        assert server.exists(orphan) and leftovers.role_exists(role)

        pruned = invoke("templates", "--dsn", pg_dsn, "--prune", *names)
        assert pruned.exit_code == 0, pruned.output + pruned.stderr
        *rows, total = pruned.stdout.splitlines()
        by_name = {row.split()[1]: row for row in rows}
        assert list(by_name) == sorted([orphan, connected]) + sorted([role, logged_in])  # the clones, then the roles
        assert re.fullmatch(rf"dropped\s+{orphan}\s+[\d.]+ (kB|MB)\s+orphaned clone: no session connected to it", by_name[orphan])
        assert re.fullmatch(rf"skipped\s+{connected}\s+[\d.]+ (kB|MB)\s+in use: 1 session connected to it", by_name[connected])
        assert re.fullmatch(
            rf"dropped\s+{role}\s+orphaned measuring role: no session logged in as it \(holds grants or objects in {scratch}\)",
            by_name[role],
        )
        assert re.fullmatch(rf"skipped\s+{logged_in}\s+in use: 1 session logged in as it", by_name[logged_in])
        assert re.fullmatch(r"dropped 1 database and 1 role, freed [\d.]+ (kB|MB); skipped 2", total)
        assert not server.exists(orphan) and not leftovers.role_exists(role)
        assert server.exists(connected) and leftovers.role_exists(logged_in)
    # their sessions are over: now they go too
    pruned = invoke("templates", "--dsn", pg_dsn, "--prune", *names)
    assert pruned.exit_code == 0, pruned.output + pruned.stderr
    assert pruned.stdout.splitlines()[-1].startswith("dropped 1 database and 1 role, freed ")
    assert not server.exists(connected) and not leftovers.role_exists(logged_in)
    assert list_clones(server, names) == [] and list_roles(server, names) == []


def test_a_role_holding_grants_where_no_one_may_connect_is_skipped_saying_why(
    server: Server, leftovers: Leftovers, pg_dsn: str
) -> None:
    role = leftovers.role()
    scratch = sql.Identifier(dbname_of(leftovers.scratch))
    with server.admin() as admin:
        admin.execute(sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS false").format(scratch))
    try:
        pruned = invoke("templates", "--dsn", pg_dsn, "--prune", role)
    finally:
        with server.admin() as admin:
            admin.execute(sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS true").format(scratch))
    assert pruned.exit_code == 0, pruned.output + pruned.stderr
    row, total = pruned.stdout.splitlines()
    assert re.fullmatch(
        rf"skipped\s+{role}\s+cannot drop it: role \"{role}\" cannot be dropped because some objects depend on it; "
        rf"could not reach {dbname_of(leftovers.scratch)}",
        row,
    )
    assert total == "dropped 0 databases, freed 0 bytes; skipped 1"
    assert leftovers.role_exists(role)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--prune", "--unused-for", "a week"],
         "--unused-for 'a week' is not a duration; use a number and a unit: 90min, 12h, 7d or 2w"),
        (["--prune", "--unused-for", "3m"], "--unused-for '3m' is not a duration; use a number and a unit: 90min, 12h, 7d or 2w"),
        (["--unused-for", "7d"], "--unused-for applies to pruning; add --prune (or --dry-run to see what it would drop)"),
        (["--include-unrecorded"], "--include-unrecorded applies to pruning; add --prune (or --dry-run to see what it would drop)"),
        (["--prune", "postgres"], "'postgres' is not a name querywarden gives (a seeded template: qw_seed_ and 12 hex "
                                  "digits, or that and _building; a clone: qw_run_ or qw_write_ and 10 hex digits; a "
                                  "measuring role: qw_measure_ and 10 hex digits); `querywarden templates` lists them"),
        (["qw_test_0123456789"], "'qw_test_0123456789' is not a name querywarden gives (a seeded template: qw_seed_ and "
                                 "12 hex digits, or that and _building; a clone: qw_run_ or qw_write_ and 10 hex digits; "
                                 "a measuring role: qw_measure_ and 10 hex digits); `querywarden templates` lists them"),
    ],
)
def test_bad_input_exits_2_naming_the_fix(args: list[str], message: str, pg_dsn: str) -> None:
    result = invoke("templates", "--dsn", pg_dsn, *args)
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [f"querywarden: error: {message}"]
    assert result.stdout == ""


def test_the_command_needs_a_server(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("QUERYWARDEN_DSN", raising=False)
    result = invoke("templates", "--prune")
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        "querywarden: error: templates needs the server that holds them (an embedded cluster has none); "
        "pass --dsn postgresql://user@host:port/db or set $QUERYWARDEN_DSN"
    )


def test_durations() -> None:
    assert parse_duration("7d", "--unused-for") == timedelta(days=7)
    assert parse_duration("2W", "--unused-for") == timedelta(weeks=2)
    assert parse_duration("1.5h", "--unused-for") == timedelta(minutes=90)
    assert parse_duration(" 90 min ", "--unused-for") == timedelta(minutes=90)
    assert parse_duration("0s", "--unused-for") == timedelta(0)
    with pytest.raises(ConfigError, match=r"^--unused-for '-1d' is not a duration"):
        parse_duration("-1d", "--unused-for")
