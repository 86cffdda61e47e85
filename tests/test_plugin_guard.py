"""Judging one test's path: pairing with its baseline, statement counts, and where statements are measured."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import replace

import psycopg
import pytest

from querywarden.baseline import PathBaseline
from querywarden.capture import CapturedStatement
from querywarden.policy import Policy
from querywarden.database import Server, dbname_of
from querywarden.fingerprint import identify
from querywarden.engine import Site, Statement, measure_all, no_probe
from querywarden.judge import timing_only
from querywarden.observation import Observation, Outcome, Unmeasured
from querywarden.path import PathSpec, StatementGroup, group_statements, judge_path, pair, unchanged
from querywarden.policy import MeasureSettings
from querywarden.query import SourceLocation

from factories import index_plan, observation, seq_plan

HOT = PathSpec("tests/test_app.py::test_page", 12_000.0, marked=True)
RARE = PathSpec("tests/test_app.py::test_report", 5.0, marked=True)
QUICK = MeasureSettings(warmup=1, min_samples=3, max_samples=5, time_cap_s=0.2)

A = "SELECT id, name FROM projects WHERE workspace_id = %s"
A_REWRITTEN = "select p.id, p.name\nfrom projects as p\nwhere p.workspace_id = %s"
B = "SELECT name FROM clients WHERE id = %s"
C = "SELECT count(*) FROM time_entries WHERE user_id = %s"


def captured(sql: str, executions: int = 1, line: int = 10, database: str = "") -> CapturedStatement:
    return CapturedStatement(sql, (1,), SourceLocation("app.py", line), "page", "psycopg", executions, database=database)


def groups(*sqls: str | tuple[str, int]) -> list[StatementGroup]:
    statements = [captured(s) if isinstance(s, str) else captured(s[0], s[1]) for s in sqls]
    return group_statements(statements)[0]


def measured(group: StatementGroup, spec: PathSpec = HOT, **kwargs: object) -> Observation:
    made = observation(group.name, sql=group.first.sql, calls=spec.calls_per_minute * group.executions, **kwargs)  # type: ignore[arg-type]
    return replace(made, fingerprint=group.identity.fingerprint, statement_count=group.executions)


def recorded(spec: PathSpec, *observations: Observation) -> PathBaseline:
    return PathBaseline(spec.test, spec.calls_per_minute, observations)


def test_statements_group_by_fingerprint_and_unmeasurable_ones_are_set_aside() -> None:
    found, skipped = group_statements(
        [captured(A), captured("SELECT id, name FROM projects WHERE workspace_id = 7"), captured(B, 3), captured("SET search_path = x")]
    )
    assert [(g.name, g.executions, g.first.sql) for g in found] == [("#1", 2, A), ("#2", 3, B)]
    assert [s.sql for s in skipped] == ["SET search_path = x"]


def test_pairs_by_fingerprint_first_then_leftovers_in_capture_order() -> None:
    old = [measured(g) for g in groups(A, B, C)]
    new = groups(C, "SELECT 1 FROM tags", A, "SELECT 2 FROM users")
    paired, unpaired = pair(new, old)
    assert [p.sql if p else None for p in paired] == [C, B, A, None]
    assert unpaired == []
    paired, unpaired = pair(groups(C), old)
    assert [p.sql for p in unpaired if p] == [A, B]


def test_a_benign_rewrite_compares_with_its_old_self() -> None:
    before = measured(groups(A)[0])
    new = groups(A_REWRITTEN)
    verdict = judge_path(HOT, new, [measured(new[0])], recorded(HOT, before), Policy())
    assert verdict.status == "pass"
    assert not verdict.blocking
    assert "SQL changed" in verdict.results[0].reasons


def test_an_n_plus_one_loop_over_a_known_statement_blocks_a_hot_path() -> None:
    old_groups = groups(A, (B, 3))
    before = recorded(HOT, *(measured(g) for g in old_groups))
    new = groups(A, (B, 100))
    verdict = judge_path(HOT, new, [measured(g) for g in new], before, Policy())
    assert verdict.blocking and verdict.status == "fail"
    assert verdict.path_reasons[:2] == (
        "the path issues 101 statements instead of 4; #2 ran ×100",
        "hot path: 12,000 calls/min (threshold 1,000)",
    )
    assert "issues 100 statements instead of 3" in verdict.results[1].reasons


def test_the_same_loop_on_a_rare_path_only_warns() -> None:
    before = recorded(RARE, *(measured(g, RARE) for g in groups(A, (B, 3))))
    new = groups(A, (B, 100))
    verdict = judge_path(RARE, new, [measured(g, RARE) for g in new], before, Policy())
    assert not verdict.blocking
    assert verdict.status == "warn"
    assert verdict.path_reasons[-1].startswith("rare path: 5 calls/min")


def test_new_and_vanished_statements_warn_and_block_only_under_strict() -> None:
    before = recorded(RARE, *(measured(g, RARE) for g in groups(A, B)))
    new = groups(A)
    verdict = judge_path(RARE, new, [measured(g, RARE) for g in new], before, Policy())
    assert (verdict.status, verdict.blocking) == ("warn", False)
    assert verdict.missing[0].reasons == ("no longer issued by this test (the path does less)",)
    assert judge_path(RARE, new, [measured(g, RARE) for g in new], before, Policy(strict=True)).blocking

    grown = groups(A, B, C)
    verdict = judge_path(RARE, grown, [measured(g, RARE) for g in grown], before, Policy())
    assert verdict.results[2].verdict.value == "new"
    assert not verdict.results[2].blocking


def test_a_path_over_its_budget_blocks() -> None:
    new = groups(A, B)
    spec = replace(RARE, budget_ms=1.0)
    before = recorded(spec, *(measured(g, spec) for g in new))
    verdict = judge_path(spec, new, [measured(g, spec, median_ms=0.8) for g in new], before, Policy())
    assert verdict.blocking
    assert verdict.path_reasons == ("its statements take 1.6 ms per call in total, over its budget of 1 ms",)


def test_a_statement_that_cannot_be_measured_is_an_error() -> None:
    new = groups(A)
    verdict = judge_path(HOT, new, [Unmeasured("#1", "PostgreSQL rejected it", A, HOT.calls_per_minute)], recorded(HOT, measured(new[0])), Policy())
    assert verdict.status == "error"
    assert verdict.results[0].reasons == ("could not be measured: PostgreSQL rejected it",)


def test_a_refresh_that_changes_only_timing_leaves_the_baseline_alone() -> None:
    new = groups(A, B)
    old = recorded(HOT, *(measured(g) for g in new))
    fresh = recorded(HOT, *(measured(g, median_ms=0.051) for g in new))
    verdict = judge_path(HOT, new, list(fresh.statements), old, Policy())
    assert unchanged(old, fresh, verdict)
    slower_plan = recorded(HOT, measured(new[0], plan=seq_plan()), fresh.statements[1])
    verdict = judge_path(HOT, new, list(slower_plan.statements), old, Policy())
    assert not unchanged(old, slower_plan, verdict)


def test_only_slowdowns_that_the_clock_alone_shows_are_measured_again() -> None:
    new = groups(A, B)
    befores = [measured(g, median_ms=1.0) for g in new]
    afters = [measured(new[0], median_ms=10.0, spread=0.1), measured(new[1], median_ms=10.0, spread=0.1, plan=index_plan(blocks=400))]
    verdict = judge_path(HOT, new, afters, recorded(HOT, *befores), Policy())
    assert [r.blocking for r in verdict.results] == [True, True]
    assert timing_only(verdict.results, Policy()) == [0]


def test_a_warn_that_only_the_clock_shows_is_measured_again_in_a_check_not_in_an_update() -> None:
    new = groups(A, B)
    befores = [measured(g, RARE, median_ms=1.0) for g in new]
    afters = [measured(new[0], RARE, median_ms=10.0, spread=0.1), measured(new[1], RARE, median_ms=10.0, spread=0.1, plan=index_plan(blocks=400))]
    verdict = judge_path(RARE, new, afters, recorded(RARE, *befores), Policy())
    assert [(r.verdict.value, r.blocking) for r in verdict.results] == [("warn", False), ("warn", False)]
    assert timing_only(verdict.results, Policy()) == [0]  # the other warns on its work too
    assert timing_only(verdict.results, Policy(), warns=False) == []  # a warn never changes what update writes


# --- where statements are measured (real PostgreSQL) ---------------------------------------------


@pytest.fixture
def template_and_test_db(server: Server) -> Iterator[tuple[str, str]]:
    """A small template (2 owners, 1 item) and a clone of it that a 'test' then changed."""
    template = f"qw_test_tmpl_{uuid.uuid4().hex[:8]}"
    server.create(template)
    try:
        with psycopg.connect(server.dsn_for(template), autocommit=True) as conn:
            conn.execute("CREATE TABLE owners (id integer PRIMARY KEY, name text NOT NULL)")
            conn.execute("CREATE TABLE items (id integer PRIMARY KEY, owner_id integer NOT NULL REFERENCES owners (id))")
            conn.execute("INSERT INTO owners VALUES (1, 'ada'), (2, 'bob')")
            conn.execute("INSERT INTO items VALUES (1, 1)")
        with server.clone(template, prefix="qw_test") as test_dsn:
            with psycopg.connect(test_dsn, autocommit=True) as conn:
                conn.execute("DELETE FROM items")
                conn.execute("DELETE FROM owners WHERE id = 2")
                conn.execute("INSERT INTO owners VALUES (3, 'cyd')")
            yield template, test_dsn
    finally:
        server.drop(template)


def measure_path(found: list[StatementGroup], spec: PathSpec, site: Site) -> tuple[Outcome, ...]:
    """The engine measuring a test's statements as the plugin hands them over."""
    statements = [Statement(g.query(spec), g.first.database, executions=g.executions, binding=g.first.binding) for g in found]
    return measure_all(statements, site, QUICK, probe=no_probe, errors="record").outcomes


def table_state(dsn: str) -> list[tuple[object, ...]]:
    with psycopg.connect(dsn) as conn:
        return conn.execute("SELECT 'owners', id, name FROM owners UNION ALL SELECT 'items', id, owner_id::text FROM items ORDER BY 1, 2").fetchall()


def test_writes_are_measured_on_a_clone_of_the_template_and_fall_back_to_the_test_database(
    server: Server, template_and_test_db: tuple[str, str]
) -> None:
    template, test_dsn = template_and_test_db
    before = table_state(test_dsn)
    statements = [
        captured("SELECT name FROM owners WHERE id = %s", database=test_dsn),
        # owner 2 exists only in the template: measured there it updates one row
        CapturedStatement("UPDATE owners SET name = 'x' WHERE id = %s", (2,), None, None, "psycopg", database=test_dsn),
        # owner 3 exists only in the test's database: the template rejects the insert, the test database takes it
        CapturedStatement("INSERT INTO items VALUES (%s, %s)", (1, 3), None, None, "psycopg", database=test_dsn),
        # a read that locks rows cannot run READ ONLY: measured as a write
        CapturedStatement("SELECT id FROM owners WHERE id = %s FOR UPDATE", (1,), None, None, "psycopg", database=test_dsn),
    ]
    found, _ = group_statements(statements)
    site = Site(server, {dbname_of(test_dsn): template}, {dbname_of(test_dsn): {"seed": "seedprint"}}, writes_in_place=True)
    outcomes = measure_path(found, RARE, site)
    assert all(isinstance(o, Observation) for o in outcomes), outcomes
    read, update, insert, locking = outcomes
    assert isinstance(read, Observation) and isinstance(update, Observation) and isinstance(insert, Observation)
    assert read.environment["seed"] == "seedprint"
    assert update.plan.children[0].actual_rows == 1  # the template's row 2
    assert insert.plan.node_type == "ModifyTable"
    assert isinstance(locking, Observation) and locking.plan.node_type == "LockRows"
    assert table_state(test_dsn) == before


def test_a_statement_no_database_accepts_is_an_error_naming_both(server: Server, template_and_test_db: tuple[str, str]) -> None:
    template, test_dsn = template_and_test_db
    found, _ = group_statements([CapturedStatement("INSERT INTO items VALUES (%s, %s)", (9, 99), None, None, "psycopg", database=test_dsn)])
    outcome = measure_path(found, RARE, Site(server, {dbname_of(test_dsn): template}, writes_in_place=True))[0]
    assert isinstance(outcome, Unmeasured)
    assert outcome.message.count("violates foreign key constraint") == 2
    assert "on the test's own database" in outcome.message

