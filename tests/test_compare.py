"""Verdicts from hand-built observations: what blocks, what warns, what passes, and the reasons given."""

from __future__ import annotations

from dataclasses import replace

import pytest

from querywarden.judge import compare
from querywarden.policy import Policy
from querywarden.observation import Unmeasured
from querywarden.plan import Buffers, PlanNode
from querywarden.verdict import RunResult, Verdict

from factories import index_plan, observation, seq_plan

POLICY = Policy(refresh="`querywarden update`")  # the wording the CLI gives the judge


def test_unchanged_passes_without_reasons() -> None:
    result = compare("q", observation(), observation(), POLICY)
    assert result.verdict == Verdict.PASS and not result.blocking and result.reasons == ()


def test_hot_query_losing_its_index_blocks_with_the_reasons_a_reviewer_needs() -> None:
    result = compare("running_timer", observation(), observation(plan=seq_plan(), median_ms=48.0), POLICY)
    assert result.verdict == Verdict.FAIL and result.blocking
    assert result.reasons[0] == "buffers 4 → 16,396 (×4,099)"
    assert "Index Scan using time_entries_user_idx on time_entries became Seq Scan" in result.reasons
    assert "cost 8.44 → 20,834 (×2,468)" in result.reasons
    assert "hot: 12,000 calls/min (threshold 1,000)" in result.reasons
    assert result.extra_ms_per_minute is not None and round(result.extra_ms_per_minute) == round((48.0 - 0.05) * 12_000)


def test_rare_query_doing_more_work_only_warns() -> None:
    before = observation(calls=5, plan=index_plan(blocks=1000, cost=400))
    after = observation(calls=5, plan=index_plan(blocks=2000, cost=400), median_ms=0.06)
    result = compare("report", before, after, POLICY)
    assert result.verdict == Verdict.WARN and not result.blocking
    assert result.reasons[0] == "buffers 1,000 → 2,000 (×2)"
    assert result.reasons[-1].startswith("rare: 5 calls/min")


def test_rare_query_whose_extra_time_exceeds_the_budget_blocks() -> None:
    result = compare("report", observation(calls=5, median_ms=100), observation(calls=5, median_ms=400, spread=1), POLICY)
    assert result.verdict == Verdict.FAIL
    assert result.reasons == (
        "median 100 → 400 ms (×4)",
        "+1.5 s of DB time per minute ≈ 0.03 cores at 5 calls/min (budget 1 s)",
    )


def test_tiny_buffer_changes_below_the_floor_pass() -> None:
    result = compare("q", observation(plan=index_plan(blocks=4)), observation(plan=index_plan(blocks=9)), POLICY)
    assert result.verdict == Verdict.PASS


def test_timing_noise_alone_does_not_fail_but_a_clear_slowdown_does() -> None:
    noisy = compare("q", observation(median_ms=10, spread=4), observation(median_ms=12, spread=4), POLICY)
    assert noisy.verdict == Verdict.PASS and noisy.reasons == ()
    clear = compare("q", observation(median_ms=10, spread=0.5), observation(median_ms=20, spread=0.5), POLICY)
    assert clear.verdict == Verdict.FAIL
    assert "median 10 → 20 ms (×2)" in clear.reasons


def test_a_slower_machine_is_divided_out_by_the_calibration_probe() -> None:
    from dataclasses import replace

    before = observation(median_ms=10, spread=0.5)
    after = observation(median_ms=20, spread=0.5)
    before = replace(before, timing=replace(before.timing, probe_ms=5.0))
    slow_machine = replace(after, timing=replace(after.timing, probe_ms=10.0))
    assert compare("q", before, slow_machine, POLICY).verdict == Verdict.PASS
    same_machine = replace(after, timing=replace(after.timing, probe_ms=5.0))
    result = compare("q", before, same_machine, POLICY)
    assert result.verdict == Verdict.FAIL and "median 10 → 20 ms (×2)" in result.reasons


def test_a_same_run_replay_decides_timing_when_the_sql_changed() -> None:
    from querywarden.timing_stats import TimingComparison

    slower = TimingComparison(1.42, 1.31, 1.55, 0.001, "slower", 20, 20, 0.98)
    result = compare("q", observation(median_ms=10, spread=0.5), observation(median_ms=10, spread=0.5), POLICY, replay=slower)
    assert result.verdict == Verdict.FAIL
    assert result.reasons[0] == "same-run A/B against the baseline SQL: ×1.42 [1.31–1.55], p=0.001"
    same = TimingComparison(1.0, 0.97, 1.03, 0.5, "same", 20, 20, 0.98)
    # the stored timing says ×2, but the same-run replay on this machine says no difference: it wins
    assert compare("q", observation(median_ms=10, spread=0.5), observation(median_ms=20, spread=0.5), POLICY, replay=same).verdict == Verdict.PASS


def test_less_work_is_improved() -> None:
    result = compare("q", observation(plan=seq_plan()), observation(plan=index_plan()), POLICY)
    assert result.verdict == Verdict.IMPROVED and not result.blocking


def test_a_cheap_new_query_is_judged_on_its_cost_and_passes() -> None:
    result = compare("q", None, observation(median_ms=0.1, calls=20_000), POLICY)
    assert result.verdict == Verdict.NEW and not result.blocking
    assert result.reasons == (
        "new: 0.1 ms and 4 buffers a call; at 20,000 calls/min ≈ 2 s of database time per minute ≈ 0.0333 cores "
        "of a 16-core database (budget 0.5 cores a query); record it with `querywarden update`",
    )


def test_a_hot_new_query_scanning_a_large_table_blocks_with_its_cost_at_the_call_rate() -> None:
    accept = replace(POLICY, accept="`querywarden update --accept {name}='why'`")
    heavy = observation(plan=seq_plan(blocks=11_056), median_ms=313.0, calls=20_000)
    result = compare("q", None, heavy, accept)
    assert result.verdict == Verdict.NEW and result.blocking
    assert result.reasons == (
        "new, and too costly to record: 313 ms and 11,056 buffers a call; at 20,000 calls/min ≈ 6,260 s of database "
        "time per minute ≈ 104 cores of a 16-core database (budget 0.5 cores a query)",
        "hot: Seq Scan on time_entries (11,056 buffers, 1 rows)",
        "fix it, or record it anyway with `querywarden update --accept q='why'`",
    )
    # The scan alone blocks a hot query, whatever this machine's clock says: it grows with the data.
    assert compare("q", None, replace(heavy, timing=observation(median_ms=0.2).timing), accept).blocking
    # A rare heavy report within the budget is recorded: 2 calls/min of 313 ms is 0.01 cores.
    assert not compare("q", None, replace(heavy, calls_per_minute=2), accept).blocking


def test_any_new_query_over_the_budget_blocks_even_when_rare_and_indexed() -> None:
    assert compare("q", None, observation(median_ms=50.0, calls=900), POLICY).blocking  # 0.75 cores
    assert not compare("q", None, observation(median_ms=50.0, calls=500), POLICY).blocking  # 0.42 cores


def test_missing_query_blocks_only_when_strict() -> None:
    assert not compare("q", observation(), None, POLICY).blocking
    assert compare("q", observation(), None, Policy(strict=True)).blocking


def test_timeout_and_budget_always_block() -> None:
    failure = Unmeasured("q", "exceeded the statement timeout of 30 s", "SELECT 1", calls_per_minute=1, timed_out=True)
    assert compare("q", observation(), failure, POLICY).verdict == Verdict.FAIL
    over = compare("q", observation(calls=1), observation(calls=1, median_ms=12, budget_ms=10), POLICY)
    assert over.blocking and over.reasons[0] == "median 12 ms exceeds its budget of 10 ms"


def test_another_postgres_major_is_incomparable_and_setting_drift_is_reported() -> None:
    other = observation(environment={"postgres_major": "16", "block_size": "8192", "work_mem": "4MB"})
    result = compare("q", observation(), other, POLICY)
    assert result.verdict == Verdict.INCOMPARABLE and result.blocking
    drift = compare("q", observation(), observation(environment={"postgres_major": "15", "block_size": "8192", "work_mem": "64MB"}), POLICY)
    assert drift.verdict == Verdict.PASS
    assert drift.reasons == ("environment drift: work_mem 4MB → 64MB",)


def test_more_statements_is_slower_and_a_new_disk_spill_is_slower() -> None:
    n_plus_one = compare("path", observation(statements=3), observation(statements=101), POLICY)
    assert n_plus_one.verdict == Verdict.FAIL
    assert n_plus_one.reasons[0] == "issues 101 statements instead of 3"
    sort = lambda spill: PlanNode("Sort", total_cost=10, buffers=Buffers(shared=100), spill=spill, children=(index_plan(blocks=100),))  # noqa: E731
    spilled = compare("q", observation(plan=sort(None)), observation(plan=sort("sort spilled to disk (external merge, 9000 kB)")), POLICY)
    assert spilled.verdict == Verdict.FAIL
    assert spilled.reasons[0] == "now spills to disk: Sort: sort spilled to disk (external merge, 9000 kB)"


def test_run_blocks_when_any_query_blocks() -> None:
    ok = compare("a", observation(), observation(), POLICY)
    bad = compare("b", observation(), observation(plan=seq_plan()), POLICY)
    assert not RunResult((ok,)).blocked
    run = RunResult((ok, bad))
    assert run.blocked and run.verdict == "fail" and run.counts()["fail"] == 1


def test_stored_timing_alone_warns_below_the_block_ratio_and_never_claims_improved() -> None:
    slower = compare("q", observation(median_ms=10, spread=0.5), observation(median_ms=15, spread=0.5), POLICY)
    assert slower.verdict == Verdict.WARN and not slower.blocking
    assert slower.reasons[0] == "median 10 → 15 ms (×1.5)"
    assert slower.reasons[-1] == "timing alone against a stored baseline blocks only past ×2"
    faster = compare("q", observation(median_ms=20, spread=0.5), observation(median_ms=10, spread=0.5), POLICY)
    assert faster.verdict == Verdict.PASS
    assert faster.reasons == ("faster by the stored timing: median 20 → 10 ms (×0.5)",)


def test_blocks_on_timing_alone_are_told_from_blocks_on_work() -> None:
    from querywarden.judge import flagged_on_timing_alone

    timing = compare("q", observation(median_ms=1, spread=0.05), observation(median_ms=5, spread=0.05), POLICY)
    assert timing.blocking and flagged_on_timing_alone(timing, POLICY, warns=False)
    work = compare("q", observation(), observation(plan=seq_plan(), median_ms=48.0), POLICY)
    assert work.blocking and not flagged_on_timing_alone(work, POLICY, warns=False)
    assert not flagged_on_timing_alone(compare("q", observation(), observation(), POLICY), POLICY, warns=False)


def test_extra_db_time_counts_every_extra_statement_of_an_n_plus_one_path() -> None:
    # calls_per_minute counts executions: a path called 60 times a minute that runs the statement 51 times
    before, after = observation(statements=1, median_ms=0.5, calls=60), observation(statements=51, median_ms=0.5, calls=60 * 51)
    result = compare("path", before, after, POLICY)
    # 50 extra statements × 0.5 ms × 60 path calls/min = 1.5 s of DB time per minute: over the budget
    assert result.extra_ms_per_minute == 1500
    assert result.verdict == Verdict.FAIL
    assert "+1.5 s of DB time per minute ≈ 0.03 cores at 60 calls/min (budget 1 s)" in result.reasons


def test_flagged_on_timing_alone_covers_warns_and_blocks_that_only_the_clock_shows() -> None:
    from dataclasses import replace

    from querywarden.judge import flagged_on_timing_alone

    # hot, x1.5 against the stored timing alone: a warn (stored timing blocks only past x2) resting on the clock
    hot_warn = compare("q", observation(median_ms=10, spread=0.5), observation(median_ms=15, spread=0.5), POLICY)
    assert hot_warn.verdict == Verdict.WARN and flagged_on_timing_alone(hot_warn, POLICY)
    # rare, x3 by the clock alone: a warn too
    rare_warn = compare("q", observation(calls=5, median_ms=10, spread=0.5), observation(calls=5, median_ms=30, spread=0.5), POLICY)
    assert rare_warn.verdict == Verdict.WARN and flagged_on_timing_alone(rare_warn, POLICY)
    # rare and doing twice the work: it warns whatever the clock says, so measuring again changes nothing
    more_work = compare(
        "q", observation(calls=5, plan=index_plan(blocks=1000)), observation(calls=5, plan=index_plan(blocks=2000), median_ms=30), POLICY
    )
    assert more_work.verdict == Verdict.WARN and not flagged_on_timing_alone(more_work, POLICY)
    # rare and doing more work (a warn), but the clock puts it over the DB-time budget (a block): the block rests on timing
    over_budget = compare(
        "q",
        observation(calls=5, plan=index_plan(blocks=1000), median_ms=100),
        observation(calls=5, plan=index_plan(blocks=2000), median_ms=400, spread=1),
        POLICY,
    )
    assert over_budget.blocking and flagged_on_timing_alone(over_budget, POLICY)
    # a block on timing alone is flagged, with or without warns; a block on work is not
    timing = compare("q", observation(median_ms=1, spread=0.05), observation(median_ms=5, spread=0.05), POLICY)
    assert timing.blocking and flagged_on_timing_alone(timing, POLICY)
    work = compare("q", observation(), observation(plan=seq_plan(), median_ms=48.0), POLICY)
    assert work.blocking and not flagged_on_timing_alone(work, POLICY)
    # a same-run A/B that says slower is timing too: it is replayed again
    from querywarden.timing_stats import TimingComparison

    rare_policy = Policy(hot_calls_per_minute=10**6)
    slower = TimingComparison(1.42, 1.31, 1.55, 0.001, "slower", 20, 20, 0.98)
    replayed = compare("q", observation(), observation(), rare_policy, replay=slower)
    assert replayed.verdict == Verdict.WARN and flagged_on_timing_alone(replayed, rare_policy)
    # nothing to confirm in a pass, an improvement or a verdict without both observations
    assert not flagged_on_timing_alone(compare("q", observation(), observation(), POLICY), POLICY)
    assert not flagged_on_timing_alone(compare("q", observation(plan=seq_plan()), observation(plan=index_plan()), POLICY), POLICY)
    assert not flagged_on_timing_alone(compare("q", None, observation(), POLICY), POLICY)
    assert not flagged_on_timing_alone(replace(hot_warn, after=None), POLICY)


def test_a_hot_query_whose_row_estimate_is_far_off_is_called_fragile() -> None:
    misjudged = replace(seq_plan(blocks=4), plan_rows=5, actual_rows=40_000)
    notes = compare("q", observation(plan=misjudged, calls=20_000), observation(plan=misjudged, calls=20_000), POLICY).reasons
    assert "fragile plan: Seq Scan on time_entries estimated 5 rows and found 40,000" in notes
    rare = compare("q", observation(plan=misjudged, calls=10), observation(plan=misjudged, calls=10), POLICY)
    assert not any(r.startswith("fragile plan") for r in rare.reasons)
    stopped_early = replace(misjudged, plan_rows=2_163, actual_rows=50)  # under a LIMIT: by design
    assert not any(r.startswith("fragile") for r in compare("q", observation(plan=stopped_early, calls=20_000), observation(plan=stopped_early, calls=20_000), POLICY).reasons)
    near = replace(misjudged, plan_rows=5, actual_rows=40)  # off by ×8, and by 35 rows: noise
    assert not any(r.startswith("fragile") for r in compare("q", observation(plan=near, calls=20_000), observation(plan=near, calls=20_000), POLICY).reasons)


def test_the_run_says_the_load_before_and_after_the_change() -> None:
    # 20,000 calls/min of 0.3 ms is 0.1 cores; a new query of 6 ms at 1,000/min adds 0.1 more.
    kept = compare("a", observation(median_ms=0.3, calls=20_000), observation(median_ms=0.3, calls=20_000), POLICY)
    added = compare("b", None, observation("b", median_ms=6.0, calls=1_000), POLICY)
    run = RunResult((kept, added))
    assert run.load_cores == pytest.approx((0.1, 0.2))
    assert run.load_text() == "projected load of the guarded queries at their call rates: 0.1 → 0.2 cores (+0.1 from this change)"


def test_a_cost_that_moved_with_the_same_plan_and_work_is_a_note_not_a_slowdown() -> None:
    # A rebuilt template analyses a new sample: estimates move, the plan and the blocks do not.
    before = observation(plan=index_plan(cost=1_446.0), calls=20_000)
    moved = observation(plan=index_plan(cost=1_900.0), calls=20_000)
    result = compare("q", before, moved, POLICY)
    assert (result.verdict, result.blocking) == (Verdict.PASS, False)
    assert result.reasons == ("cost 1,446 → 1,900 (×1.31) with the same plan and work: estimates moved, not the query",)
    # With more work, the cost counts as part of the evidence.
    worse = observation(plan=index_plan(cost=1_900.0, blocks=400), calls=20_000)
    assert "cost 1,446 → 1,900 (×1.31)" in compare("q", before, worse, POLICY).reasons


def test_a_refresh_keeps_a_baseline_whose_estimates_alone_moved() -> None:
    from querywarden.judge import keeps

    before = observation(plan=index_plan(cost=1_446.0))
    assert keeps(before, observation(plan=replace(index_plan(cost=1_529.0), plan_rows=126)), blocking=False)
    assert not keeps(before, observation(plan=index_plan(cost=1_529.0, blocks=40)), blocking=False)  # more work


def test_small_additions_that_add_up_past_the_change_budget_block_the_change() -> None:
    from querywarden.judge import CHANGE, change_budget

    # Three new queries of 0.4 cores each: each within the query budget, 1.2 cores together.
    added = [compare(name, None, observation(name, median_ms=4.0, calls=6_000), POLICY) for name in "abc"]
    assert not any(r.blocking for r in added)
    whole = change_budget(added, POLICY)
    assert whole is not None and whole.name == CHANGE and whole.blocking
    assert whole.reasons == (
        "together its regressed and new queries add ≈ 1.2 cores of a 16-core database at their call rates "
        "(budget 1 core a change)",
    )
    assert change_budget(added[:2], POLICY) is None  # 0.8 cores
    assert change_budget(added, replace(POLICY, change_cores_budget=2.0)) is None


def test_a_loose_base_ab_alone_blocks_only_past_the_stored_ratio() -> None:
    """Timed on two server processes that could not share a core, a same-run A/B can read a difference
    between the sessions as one between the queries: alone it warns below ×2, as stored timing does."""
    from querywarden.timing_stats import TimingComparison

    base, head = observation(median_ms=10, spread=0.5), observation(median_ms=13, spread=0.5)
    slower = TimingComparison(1.3, 1.2, 1.4, 0.001, "slower", 60, 60, 0.98)
    pinned = compare("q", base, head, POLICY, replay=slower, against="the base revision abc")
    assert pinned.verdict == Verdict.FAIL and pinned.blocking
    loose = compare("q", base, head, POLICY, replay=slower, against="the base revision abc", loose=True)
    assert loose.verdict == Verdict.WARN and not loose.blocking
    assert loose.reasons[-1] == "timing alone on two server processes that could not share a core blocks only past ×2"
    twice = compare("q", base, observation(median_ms=25, spread=0.5), POLICY,
                    replay=TimingComparison(2.5, 2.3, 2.7, 0.001, "slower", 60, 60, 0.98), loose=True)
    assert twice.blocking  # a large effect still blocks
    faster = TimingComparison(0.8, 0.75, 0.85, 0.001, "faster", 60, 60, 0.98)
    assert compare("q", head, base, POLICY, replay=faster, loose=True).verdict == Verdict.PASS
    # With evidence of more work, the loose timing counts as any other.
    worse = observation(median_ms=13, spread=0.5, plan=index_plan(blocks=400))
    assert compare("q", base, worse, POLICY, replay=slower, loose=True).blocking
