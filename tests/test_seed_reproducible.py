"""Re-seeding and re-analysing gives the same plans and work: no verdict flapping between builds.

The example (scale 0.1) is built five times from scratch (create, load, autovacuum off, VACUUM
ANALYZE at the server's statistics target, as production analyses), each into its own database that
is dropped after; every query of its catalog, reads and then writes (rolled back), is measured on
each build in the same order on one connection (the runner's clone per write adds seconds of
checkpointing and nothing to what this test checks). Plan shape, actual rows and blocks touched must
be identical; costs and row estimates follow the statistics sample and may move. Comparing each
build with the first gives `pass` every time once timing (the one input that varies run to run) is
taken from the first build, with at most a note that estimates moved.
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
        "actual_rows": [node.actual_rows for _, node in plan.walk()],
        "buffers": [node.buffers.total for _, node in plan.walk()],
        "environment": dict(observation.environment),
    }


def test_five_rebuilds_give_identical_plans_buffers_and_verdicts(server: Server, example_seed: Seed) -> None:
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
            assert result.verdict == Verdict.PASS and not result.blocking, f"build {number}: {name}: {result.reasons}"
            assert all("estimates moved, not the query" in r for r in result.reasons), f"build {number}: {name}: {result.reasons}"
