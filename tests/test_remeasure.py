"""A verdict that rests on timing alone is measured again before it stands (real PostgreSQL).

Nothing here asserts a time: the stored baselines are rewritten to be 50 times faster or slower than
any real run, so which verdicts rest on the clock, and what the second measurement says, is certain.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from querywarden.baseline import BaselineStore
from querywarden.policy import Policy
from querywarden.database import Server, dbname_of
from querywarden.policy import MeasureSettings
from querywarden.observation import Observation, Timing
from querywarden.query import GuardedQuery
from querywarden.engine import database_site, evaluate, refresh
from querywarden.verdict import Verdict

QUICK = MeasureSettings(warmup=1, min_samples=5, max_samples=7, time_cap_s=0.5)
QUERIES = [
    GuardedQuery("report", "SELECT count(*) FROM generate_series(1, 20000) AS g WHERE g %% 7 = %(k)s", {"k": 3}, 5.0),
    GuardedQuery("lookup", "SELECT count(*) FROM generate_series(1, 20000) AS g WHERE g %% 5 = %(k)s", {"k": 2}, 5.0),
]


def scaled(observation: Observation, factor: float) -> Observation:
    timing = observation.timing
    samples = tuple(v * factor for v in timing.samples_ms) or (timing.median_ms * factor,)
    return replace(observation, timing=Timing.from_samples(samples, timing.probe_ms))


def test_a_warn_on_stored_timing_alone_is_measured_again_and_a_real_slowdown_still_warns(scratch_db: str, tmp_path: Path) -> None:
    place = database_site(Server(scratch_db), dbname_of(scratch_db))
    store = BaselineStore(tmp_path)
    refresh(evaluate(place.statements(QUERIES, {}), place.site, QUICK, Policy(), confirm_warns=False), store)
    report, lookup = store.load("report"), store.load("lookup")
    assert report is not None and lookup is not None
    store.write(scaled(report, 1 / 50))  # the baseline says 50 times faster: today's run is "slower" by the clock alone
    store.write(scaled(lookup, 50))  # 50 times slower: today's run is faster, nothing to confirm
    said: list[str] = []
    evaluation = evaluate(place.statements(QUERIES, store.load_all()), place.site, QUICK, Policy(), progress=said.append)
    confirming = [line for line in said if line.startswith("confirming")]
    assert confirming == ["confirming timing-only slowdowns by measuring again: report"]
    assert said.count("measuring report") == 2 and said.count("measuring lookup") == 1
    verdicts = {r.name: r for r in evaluation.results}
    # a real slowdown shows in the second measurement too: it still warns (a rare query), with its timing reason
    assert verdicts["report"].verdict == Verdict.WARN and not verdicts["report"].blocking
    assert verdicts["report"].reasons[0].startswith("median ")
    assert verdicts["lookup"].verdict == Verdict.PASS
