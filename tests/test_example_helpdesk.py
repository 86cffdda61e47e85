"""The Django example (examples/helpdesk) as its team runs it: real pytest sessions with pytest-django
on, on a copy of the project and its committed baselines, against the real PostgreSQL.

A migration that drops the hot path's index and an N+1 through the ORM block; a migration adding an
unrelated column passes; a test's own rows, which only its transaction sees, are what its baseline's
plan saw; a test that commits does not cost the next one its seed.
"""

from __future__ import annotations

import json
import re
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from example_copies import ExampleCopy, copy_example

SEEDED_CUSTOMERS = 4_000  # what seed.py writes at scale 1


@pytest.fixture
def project(tmp_path: Path, pg_dsn: str) -> Iterator[ExampleCopy]:
    yield ExampleCopy(*copy_example(tmp_path, "helpdesk", "helpdesk-tests", pg_dsn), pg_dsn)


def _plan_rows(node: object) -> float:
    assert isinstance(node, dict)
    return float(node["actual_rows"])


def test_the_committed_baselines_pass_and_the_own_rows_baseline_saw_them(project: ExampleCopy) -> None:
    run = project.run()
    assert run.returncode == 0, run.output
    assert "querywarden: passed: 4 guarded tests (4 pass)" in run.output
    # The committed baseline of the test that creates its own rows: measured in its transaction, on them.
    own = project.baseline("test_queue_of_a_new_agent")
    assert own["environment"]["measured_in"] == "test transaction"  # type: ignore[index]
    (statement,) = own["statements"]  # type: ignore[misc]
    assert _plan_rows(statement["plan"]) == 6.0  # NEW_TICKETS of tests/test_hot_paths.py


DROP_QUEUE_INDEX = """\
    from django.db import migrations


    class Migration(migrations.Migration):
        dependencies = [("helpdesk", "0001_initial")]
        operations = [migrations.RemoveIndex(model_name="ticket", name="ticket_agent_queue_idx")]
    """


def test_a_migration_dropping_the_queue_index_blocks_the_hot_path(project: ExampleCopy) -> None:
    project.write("helpdesk/migrations/0002_drop_queue_index.py", DROP_QUEUE_INDEX)
    project.replace(
        "helpdesk/models.py",
        'models.Index(fields=["assignee", "status", "-priority", "created_at"], name="ticket_agent_queue_idx"),',
        "",
    )
    run = project.run(own_schema=True)
    assert run.returncode == 1, run.output
    assert "tests/test_hot_paths.py::test_agent_queue" in run.failed(), run.output
    assert re.search(r"querywarden: BLOCKED: 4 guarded tests \(\d fail", run.output), run.output
    assert "tests/test_hot_paths.py::test_ticket_list" not in run.failed()  # another index serves it


def test_an_n_plus_1_through_the_orm_blocks_the_ticket_list(project: ExampleCopy) -> None:
    project.replace("helpdesk/queries.py", '.select_related("customer", "assignee")', "")
    run = project.run()
    assert run.returncode == 1, run.output
    assert run.failed() == {"tests/test_hot_paths.py::test_ticket_list"}, run.output
    # 1 + 25 customers + an assignee for each assigned ticket of the page
    assert re.search(r"the path issues \d+ statements instead of 1; #2 ran ×25", run.output), run.output


ADD_EDITED_AT = """\
    from django.db import migrations, models


    class Migration(migrations.Migration):
        dependencies = [("helpdesk", "0001_initial")]
        operations = [migrations.AddField(model_name="comment", name="edited_at", field=models.DateTimeField(null=True))]
    """


def test_a_migration_adding_an_unrelated_column_passes(project: ExampleCopy) -> None:
    project.write("helpdesk/migrations/0002_comment_edited_at.py", ADD_EDITED_AT)
    project.replace("helpdesk/models.py", "    body = models.TextField()\n",
                    "    body = models.TextField()\n    edited_at = models.DateTimeField(null=True)\n")
    run = project.run(own_schema=True)
    assert run.returncode == 0, run.output
    assert "querywarden: passed: 4 guarded tests" in run.output, run.output


OWN_ROWS = """\
    import json
    from datetime import datetime, timedelta, timezone

    import pytest
    from django.db import connection

    from helpdesk.models import Agent, Customer, Ticket
    from helpdesk.queries import agent_queue

    NOW = datetime(2026, 6, 1, tzinfo=timezone.utc)


    @pytest.mark.hot_path(calls_per_minute=600)  # not hot: where its new rows land varies, and the clock with load
    def test_a_queue_of_its_own_agent(querywarden, db, request):
        agent = Agent.objects.create(name="Own", email="own@helpdesk.example.com", team="technical")
        customer = Customer.objects.create(name="Own Customer", email="own@example.com", created_at=NOW)
        Ticket.objects.bulk_create(
            Ticket(customer=customer, assignee=agent, subject=f"Own {n}", status="open" if n % 3 else "pending",
                   priority=1 + n % 4, created_at=NOW - timedelta(minutes=n), updated_at=NOW)
            for n in range(9)
        )
        with querywarden.capture(connection):
            queue = agent_queue(agent.pk)
        (request.config.rootpath / "seen.json").write_text(json.dumps(len(queue)))
        assert 0 < len(queue) < 9


    @pytest.mark.django_db(transaction=True)
    def test_b_commits_a_customer():
        Customer.objects.create(name="Committed", email="committed@example.com", created_at=NOW)
        assert Customer.objects.filter(email="committed@example.com").exists()


    def test_c_then_sees_the_seed_whole(db):
        assert not Customer.objects.filter(email="committed@example.com").exists()
        assert Customer.objects.count() == {customers}


    def test_d_commits_through_querywarden_db(querywarden_db):
        querywarden_db.execute("INSERT INTO helpdesk_agent (name, email, team, active) VALUES ('Raw', 'raw@x', 'x', true)")
        querywarden_db.execute("COMMIT")


    def test_e_django_follows_to_the_fresh_clone(db):
        assert not Agent.objects.filter(email="raw@x").exists()
        assert Customer.objects.count() == {customers}
    """
# pytest-django runs `db` tests before committing ones; this project runs them in the order above.
IN_FILE_ORDER = """\

    import pytest


    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(items):
        items.sort(key=lambda item: item.name)
    """


def test_rows_in_the_tests_own_transaction_are_what_its_baseline_saw(project: ExampleCopy) -> None:
    project.write("tests/test_hot_paths.py", OWN_ROWS.replace("{customers}", str(SEEDED_CUSTOMERS)))
    conftest = project.root / "tests" / "conftest.py"
    conftest.write_text(conftest.read_text() + textwrap.dedent(IN_FILE_ORDER))
    for old in project.baselines.iterdir():
        old.unlink()  # this project has the one test above

    recorded = project.run("--querywarden-update", "-v")
    assert recorded.returncode == 0, recorded.output
    # a commit (pytest-django flushes the tables after it) costs the next test nothing of the seed
    assert re.findall(r"::(test_\w+) PASSED", recorded.output) == [
        "test_a_queue_of_its_own_agent", "test_b_commits_a_customer", "test_c_then_sees_the_seed_whole",
        "test_d_commits_through_querywarden_db", "test_e_django_follows_to_the_fresh_clone",
    ], recorded.output
    seen = json.loads((project.root / "seen.json").read_text())
    assert seen == 6  # the open ones of the 9 tickets the test created
    baseline = project.baseline("test_a_queue_of_its_own_agent")
    assert baseline["environment"]["measured_in"] == "test transaction"  # type: ignore[index]
    (statement,) = baseline["statements"]  # type: ignore[misc]
    plan = statement["plan"]
    assert _plan_rows(plan) == seen
    assert [child["index"] for child in plan["children"]] == ["ticket_agent_queue_idx"]

    checked = project.run()
    assert checked.returncode == 0, checked.output
    assert "querywarden: passed: 1 guarded tests" in checked.output, checked.output
