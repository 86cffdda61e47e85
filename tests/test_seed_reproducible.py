"""Re-seeding and re-analysing gives the same planner inputs: no cost flapping between builds.

The example (scale 0.1) is built five times from scratch (create, load, autovacuum off, VACUUM
ANALYZE), each into its own database that is dropped after; every query of its catalog, reads and
then writes (rolled back), is measured on each build in the same order on one connection (the
runner's clone per write adds seconds of checkpointing and nothing to what this test checks). Plan shape, cost, estimated and actual rows and blocks touched
must be identical, and comparing each build with the first gives `pass` every time once timing
(the one input that varies run to run) is taken from the first build.
"""

from __future__ import annotations

import uuid
from dataclasses import replace

from querywarden.catalog import load_catalogs
from querywarden.judge import compare
from querywarden.policy import Policy
from querywarden.config import load_config
from querywarden.database import Server
from querywarden.database import connect
from querywarden.fingerprint import identify
from querywarden.measure import measure, prepare_session
from querywarden.observation import Observation
from querywarden.seeding.seed import Seed, build
from querywarden.verdict import Verdict

from conftest import EXAMPLE, REPO

BUILDS = 5


def deterministic_part(observation: Observation) -> dict[str, object]:
    plan = observation.plan
    return {
        "signature": plan.signature(),
        "cost": plan.total_cost,
        "plan_rows": [node.plan_rows for _, node in plan.walk()],
        "actual_rows": [node.actual_rows for _, node in plan.walk()],
        "buffers": [node.buffers.total for _, node in plan.walk()],
        "environment": dict(observation.environment),
    }


def test_five_rebuilds_give_identical_costs_buffers_and_verdicts(server: Server, example_seed: Seed) -> None:
    queries = sorted(load_catalogs([EXAMPLE / "queries.sql"]), key=lambda q: identify(q.sql).kind != "read")
    settings = replace(load_config(REPO).measure, min_samples=3, max_samples=3, time_cap_s=0.5)
    builds: list[dict[str, Observation]] = []
    for _ in range(BUILDS):
        name = f"qw_test_{uuid.uuid4().hex[:10]}"
        outcomes: dict[str, Observation] = {}
        try:
            build(server, example_seed, name)
            with connect(server.dsn_for(name)) as conn:
                environment = prepare_session(conn, settings)
                for query in queries:
                    outcome = measure(conn, query, settings, environment)
                    assert isinstance(outcome, Observation), outcome
                    outcomes[query.name] = outcome
        finally:
            server.drop(name)
        builds.append(outcomes)

    first = builds[0]
    assert set(first) == {q.name for q in queries}
    for number, later in enumerate(builds[1:], start=2):
        for name, observation in later.items():
            assert deterministic_part(observation) == deterministic_part(first[name]), f"build {number}: {name}"
            same_timing = replace(observation, timing=first[name].timing)
            result = compare(name, first[name], same_timing, Policy())
            assert (result.verdict, result.reasons) == (Verdict.PASS, ()), f"build {number}: {name}"
