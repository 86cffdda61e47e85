"""Tests of the statistics that decide "is B slower than A".

Every sample is synthetic, drawn from a seeded `random.Random`, so each test has a known answer and
gives the same result on every run. Nothing here measures real time: the adaptive sampler is driven
by fake measure functions and a fake clock.
"""

from __future__ import annotations

import itertools
import math
import random
import statistics
from collections import Counter
from collections.abc import Callable, Sequence

import pytest

from querywarden import timing_stats as stats
from querywarden.timing_stats import (
    calibrated_ratio,
    compare_timings,
    extra_db_time,
    mann_whitney_u,
    noise_threshold,
    ratio_of_medians_ci,
    relative_se_of_median,
    sample_adaptively,
)


def lognormal_sigma(cv: float) -> float:
    """The log-sd of a lognormal whose coefficient of variation is `cv`: CV^2 = exp(sigma^2) - 1."""
    return math.sqrt(math.log1p(cv * cv))


SIGMA_25 = lognormal_sigma(0.25)  # sub-millisecond queries on a noisy CI runner
SIGMA_3 = lognormal_sigma(0.03)  # a quiet query


def timings(rng: random.Random, n: int, *, scale: float = 1.0, sigma: float = SIGMA_25) -> list[float]:
    """n timings whose median is `scale` (the median of a lognormal is exp(mu))."""
    return [scale * rng.lognormvariate(0.0, sigma) for _ in range(n)]


def u_by_pairs(a: Sequence[float], b: Sequence[float]) -> float:
    """U counted straight from its definition: pairs with b > a, ties counting one half."""
    return sum(1.0 if y > x else 0.5 if y == x else 0.0 for y in b for x in a)


def enumerate_p_values(a: Sequence[float], b: Sequence[float]) -> tuple[float, float]:
    """P(U >= u) and P(U <= u) over every way of splitting the pooled values into a and b."""
    pooled = list(a) + list(b)
    observed = u_by_pairs(a, b)
    at_least = at_most = total = 0
    for chosen in itertools.combinations(range(len(pooled)), len(b)):
        new_b = [pooled[i] for i in chosen]
        new_a = [pooled[i] for i in range(len(pooled)) if i not in chosen]
        u = u_by_pairs(new_a, new_b)
        total += 1
        at_least += u >= observed
        at_most += u <= observed
    return at_least / total, at_most / total


# --------------------------------------------------------------------------------------------------
# Mann-Whitney U


def test_exact_p_value_of_a_tiny_case_matches_hand_enumeration() -> None:
    a, b = [1.0, 2.0, 4.0], [3.0, 5.0, 6.0]
    # U = pairs with b > a: 3 beats {1, 2}, 5 and 6 beat all three -> 2 + 3 + 3 = 8 of 9.
    # Of the C(6, 3) = 20 equally likely ways to pick which three of the six values are "b", only
    # {4, 5, 6} (U = 9) and {3, 5, 6} (U = 8) reach U >= 8, so P(U >= 8) = 2/20; and every split
    # except {4, 5, 6} has U <= 8, so P(U <= 8) = 19/20.
    result = mann_whitney_u(a, b)
    assert result.method == "exact"
    assert result.u == 8.0
    assert result.p_value == pytest.approx(2 / 20)
    assert result.p_value_less == pytest.approx(19 / 20)
    assert (result.p_value, result.p_value_less) == pytest.approx(enumerate_p_values(a, b))
    assert result.effect == pytest.approx(8 / 9)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ([1.0, 2.0, 2.0], [2.0, 3.0, 3.0]),  # ties inside and across samples
        ([5.0, 5.0, 5.0, 5.0], [5.0, 5.0]),  # everything tied: no evidence either way
        ([0.012, 0.013, 0.012, 0.011], [0.013, 0.014, 0.013]),  # EXPLAIN's 3-decimal rounding
        ([3.0], [1.0, 2.0, 4.0, 5.0]),
        ([2.0, 7.0, 1.0, 8.0, 3.0], [9.0, 6.0, 4.0, 10.0, 5.0]),
    ],
)
def test_exact_p_values_match_enumeration_with_and_without_ties(a: list[float], b: list[float]) -> None:
    result = mann_whitney_u(a, b)
    assert result.method == "exact"
    assert result.u == u_by_pairs(a, b)
    p_greater, p_less = enumerate_p_values(a, b)
    assert result.p_value == pytest.approx(p_greater, abs=1e-12)
    assert result.p_value_less == pytest.approx(p_less, abs=1e-12)


def test_exact_distribution_counts_every_labelling_once() -> None:
    sizes = [1, 3, 1, 2, 1, 4, 1]  # tie groups of a 13-value pooled sample
    for n_b in range(0, 14):
        assert sum(stats._exact_u2_distribution(sizes, n_b).values()) == math.comb(13, n_b)


def test_smallest_exact_p_value_is_one_over_the_number_of_labellings() -> None:
    # Five against five, completely separated: only 1 of C(10, 5) = 252 labellings is as extreme.
    result = mann_whitney_u([1.0, 2.0, 3.0, 4.0, 5.0], [6.0, 7.0, 8.0, 9.0, 10.0])
    assert result.p_value == pytest.approx(1 / 252)
    assert result.p_value_less == 1.0


def test_swapping_the_samples_swaps_the_one_sided_p_values() -> None:
    rng = random.Random(7)
    for n in (6, 40):  # exact and normal approximation
        a, b = timings(rng, n), timings(rng, n, scale=1.2)
        forward, backward = mann_whitney_u(a, b), mann_whitney_u(b, a)
        assert forward.p_value == pytest.approx(backward.p_value_less)
        assert forward.u + backward.u == n * n


def test_normal_approximation_agrees_with_exact_near_the_threshold(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = random.Random(11)
    a, b = timings(rng, 20), timings(rng, 20, scale=1.35)
    exact = mann_whitney_u(a, b)
    monkeypatch.setattr(stats, "EXACT_MAX_PAIRS", 0)
    approx = mann_whitney_u(a, b)
    assert (exact.method, approx.method) == ("exact", "normal")
    assert exact.p_value < 0.1  # a case where the answer matters
    assert approx.p_value == pytest.approx(exact.p_value, abs=0.005)


def test_normal_approximation_when_everything_ties_gives_no_evidence() -> None:
    result = mann_whitney_u([2.0] * 30, [2.0] * 30)
    assert result.method == "normal"
    assert (result.p_value, result.p_value_less) == (1.0, 1.0)


def test_rank_test_rejects_identical_distributions_at_about_its_level() -> None:
    rng = random.Random(2024)
    trials = 1000
    rejected = sum(mann_whitney_u(timings(rng, 30), timings(rng, 30)).p_value <= 0.05 for _ in range(trials))
    # Under the null the count is Binomial(1000, <= 0.05): mean <= 50, sd ~6.9. The window is
    # about +-3 sd (the continuity correction makes the test slightly conservative, hence low side).
    assert 25 <= rejected <= 71


def test_rank_test_rejects_bad_input() -> None:
    with pytest.raises(ValueError):
        mann_whitney_u([], [1.0])
    with pytest.raises(ValueError):
        mann_whitney_u([1.0, math.nan], [1.0])


# --------------------------------------------------------------------------------------------------
# Bootstrap of medians


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 6])
def test_bootstrap_median_law_matches_enumerating_every_resample(n: int) -> None:
    """The shortcut's law of the resampled median equals that of all n^n resamples of positions."""
    m = (n + 1) // 2
    middle: Counter[tuple[int, int]] = Counter()
    for positions in itertools.product(range(n), repeat=n):
        ordered = sorted(positions)
        middle[(ordered[m - 1], ordered[m] if n % 2 == 0 else ordered[m - 1])] += 1
    lows, highs, cdf = stats._bootstrap_median_law(n)
    assert set(zip(lows, highs)) == set(middle)
    previous = 0.0
    for low, high, cumulative in zip(lows, highs, cdf):
        assert cumulative - previous == pytest.approx(middle[(low, high)] / n**n, abs=1e-12)
        previous = cumulative
    assert cdf[-1] == 1.0


def test_bootstrap_median_draws_follow_the_law_of_resampled_medians() -> None:
    values = [1.0, 2.0, 4.0, 8.0]  # even n: medians are averages of two positions
    exact: Counter[float] = Counter(
        statistics.median([values[i] for i in positions])
        for positions in itertools.product(range(4), repeat=4)
    )
    draws = 40_000
    sampler = stats._BootstrapMedian(values)
    rng = random.Random(5)
    seen = Counter(sampler.draw(rng) for _ in range(draws))
    assert set(seen) <= set(exact)
    for value, count in exact.items():
        # Each frequency has sd <= sqrt(0.25 / 40000) = 0.0025; allow 4 sd.
        assert seen[value] / draws == pytest.approx(count / 4**4, abs=0.01)


@pytest.mark.parametrize("n", [101, 102])
def test_large_samples_draw_resampled_medians_from_the_same_law(n: int) -> None:
    """Beyond the tabulated sizes, medians are drawn from Beta order statistics: the law is the same.

    The tabulated law (exact, any n) is the reference: the empirical distribution of 20,000 draws
    must be within the Kolmogorov-Smirnov bound 1.95 / sqrt(20000) ~ 0.014 of it (0.1% level).
    """
    values = [float(2**i) if i < 60 else float(i * i) for i in range(n)]  # distinct, unevenly spaced
    sampler = stats._BootstrapMedian(values)
    assert not sampler.tabulated
    lows, highs, cdf = stats._bootstrap_median_law(n)
    ordered = sorted(values)
    law: dict[float, float] = {}
    previous = 0.0
    for low, high, cumulative in zip(lows, highs, cdf):
        median = (ordered[low] + ordered[high]) / 2.0
        law[median] = law.get(median, 0.0) + cumulative - previous
        previous = cumulative
    rng = random.Random(11)
    draws = 20_000
    seen = Counter(sampler.draw(rng) for _ in range(draws))
    assert set(seen) <= set(law)
    expected = observed = 0.0
    worst = 0.0
    for value in sorted(law):
        expected += law[value]
        observed += seen[value] / draws
        worst = max(worst, abs(observed - expected))
    assert worst < 1.95 / math.sqrt(draws)


def test_large_samples_give_an_interval_around_the_true_ratio() -> None:
    rng = random.Random(13)
    a, b = timings(rng, 300), timings(rng, 300, scale=1.2)
    ratio, low, high = ratio_of_medians_ci(a, b, resamples=300)
    assert low < ratio < high
    assert low < 1.2 < high
    assert ratio_of_medians_ci(a, b, resamples=300) == (ratio, low, high)  # seeded: reproducible


def test_ratio_ci_is_deterministic_and_brackets_the_point_estimate() -> None:
    rng = random.Random(3)
    a, b = timings(rng, 25), timings(rng, 24, scale=1.3)
    first = ratio_of_medians_ci(a, b, seed=9)
    assert first == ratio_of_medians_ci(a, b, seed=9)
    ratio, low, high = first
    assert ratio == statistics.median(b) / statistics.median(a)
    assert low < ratio < high
    narrower = ratio_of_medians_ci(a, b, confidence=0.5, seed=9)
    assert low < narrower[1] < narrower[2] < high


def test_ratio_ci_contains_the_true_ratio_at_about_the_nominal_rate() -> None:
    true_ratio = 1.3
    trials = 200
    covered = 0
    for seed in range(trials):
        rng = random.Random(seed)
        a, b = timings(rng, 20), timings(rng, 20, scale=true_ratio)
        _, low, high = ratio_of_medians_ci(a, b, confidence=0.95)
        covered += low <= true_ratio <= high
    # At 95% the count is about Binomial(200, 0.95): sd = sqrt(200 * 0.95 * 0.05) ~ 3.1 trials.
    # Accept the nominal 190 +- 3 sd (181..199); the percentile interval of a median runs a little
    # conservative, which is the safe side.
    assert 181 <= covered <= 199


def test_ratio_ci_rejects_bad_input() -> None:
    with pytest.raises(ValueError):
        ratio_of_medians_ci([1.0, 0.0], [1.0])
    with pytest.raises(ValueError):
        ratio_of_medians_ci([1.0], [1.0], confidence=1.0)
    with pytest.raises(ValueError):
        ratio_of_medians_ci([1.0], [1.0], resamples=0)


# --------------------------------------------------------------------------------------------------
# compare_timings


def decisions(
    trials: int, *, n: int, shift: float, sigma: float = SIGMA_25, min_effect: float = 1.10
) -> Counter[str]:
    """Tally compare_timings decisions over seeded trials of n baseline and n candidate timings."""
    tally: Counter[str] = Counter()
    for seed in range(trials):
        rng = random.Random(seed)
        baseline = timings(rng, n, sigma=sigma)
        candidate = timings(rng, n, scale=shift, sigma=sigma)
        tally[compare_timings(baseline, candidate, min_effect=min_effect, alpha=0.01).decision] += 1
    return tally


def test_identical_distributions_are_rarely_called_slower_or_faster() -> None:
    # min_effect=1.0 strips the effect-size guard, so only the rank test at alpha = 0.01 (and a CI
    # above 1) stands between noise and "slower". Per trial P(slower) <= alpha, so over 200
    # independent trials the count is at most Binomial(200, 0.01): mean 2, and
    # P(count >= 6) = 1 - sum_{k<=5} C(200,k) 0.01^k 0.99^(200-k) ~ 0.016. "<= 5" is therefore a
    # bound a correct implementation passes; the seeds are fixed, so the outcome is reproducible.
    strict = decisions(200, n=30, shift=1.0, min_effect=1.0)
    assert strict["slower"] <= 5
    assert strict["faster"] <= 5
    # With the default 10% minimum effect, noise should essentially never be called a change.
    default = decisions(200, n=30, shift=1.0)
    assert default["slower"] == 0
    assert default["faster"] == 0


def test_a_true_one_and_a_half_times_slowdown_is_called_slower() -> None:
    # CV 25%, 30 samples each. The 98% interval (1 - 2 * alpha) of a median ratio is wide at that
    # noise: ~6% of trials come out "inconclusive" (their lower bound just under 1.10), which is the
    # adaptive sampler's cue to take more samples. None may be called anything else.
    tally = decisions(200, n=30, shift=1.5)
    assert tally["slower"] >= 180
    assert tally["slower"] + tally["inconclusive"] == 200


def test_a_true_speedup_is_called_faster() -> None:
    # The mirror image of the slowdown above (same |log ratio|), so the same ~6-10% inconclusive.
    tally = decisions(100, n=30, shift=1 / 1.5)
    assert tally["faster"] >= 85
    assert tally["faster"] + tally["inconclusive"] == 100


def test_a_small_real_slowdown_below_min_effect_is_never_called_slower() -> None:
    tally = decisions(200, n=30, shift=1.05)
    assert tally["slower"] == 0


def test_quiet_identical_queries_are_called_same() -> None:
    tally = decisions(100, n=30, shift=1.0, sigma=SIGMA_3)
    assert tally["same"] >= 95
    assert tally["slower"] == tally["faster"] == 0


def test_comparison_fields_and_p_value_direction() -> None:
    rng = random.Random(1)
    baseline, candidate = timings(rng, 30), timings(rng, 30, scale=2.0)
    slower = compare_timings(baseline, candidate)
    assert slower.decision == "slower"
    assert slower.ratio == statistics.median(candidate) / statistics.median(baseline)
    assert slower.ci_low > 1.10
    assert slower.p_value == mann_whitney_u(baseline, candidate).p_value <= 0.01
    assert (slower.n_baseline, slower.n_candidate) == (30, 30)
    assert slower.confidence == pytest.approx(0.98)
    faster = compare_timings(candidate, baseline)
    assert faster.decision == "faster"
    assert faster.p_value == mann_whitney_u(candidate, baseline).p_value_less


def test_too_few_samples_are_inconclusive_however_large_the_change() -> None:
    # Four against four cannot reach p <= 0.01 (the smallest exact p is 1/70), and the bootstrap of
    # a median from so few values is too coarse to call anything "same" either.
    assert compare_timings([1.0, 1.0, 1.0, 1.0], [9.0, 9.0, 9.0, 9.0]).decision == "inconclusive"
    assert compare_timings([1.0] * 4, [1.0] * 4).decision == "inconclusive"
    assert compare_timings([1.0] * 5, [1.0] * 5).decision == "same"


def test_compare_timings_rejects_bad_settings() -> None:
    with pytest.raises(ValueError):
        compare_timings([1.0] * 5, [1.0] * 5, min_effect=0.9)
    with pytest.raises(ValueError):
        compare_timings([1.0] * 5, [1.0] * 5, alpha=0.5)
    with pytest.raises(ValueError):
        compare_timings([1.0, -1.0], [1.0, 1.0])


# --------------------------------------------------------------------------------------------------
# Stored-timing comparisons


def test_calibrated_ratio_divides_out_the_machine_speed_change() -> None:
    # The probe got 20% slower, so the machine did: a query 20% slower is unchanged.
    assert calibrated_ratio(1.2, 10.0, 12.0) == pytest.approx(1.0)
    # The machine got faster, so an unchanged-looking query actually got slower.
    assert calibrated_ratio(1.0, 10.0, 8.0) == pytest.approx(1.25)
    with pytest.raises(ValueError):
        calibrated_ratio(1.0, 0.0, 1.0)


def test_noise_threshold_never_drops_below_the_floor() -> None:
    assert noise_threshold([2.0] * 10) == 1.10
    assert noise_threshold([2.0] * 10, floor=1.25) == 1.25
    quiet = timings(random.Random(4), 30, sigma=SIGMA_3)
    assert noise_threshold(quiet) == 1.10


def test_noise_threshold_grows_with_spread_and_k_and_shrinks_with_samples() -> None:
    rng = random.Random(8)
    noisy = timings(rng, 30)
    threshold = noise_threshold(noisy)
    # Medians of 30 samples at CV 25% have relative SE ~ 1.25 * 0.25 / sqrt(30) ~ 5.6%; the log of
    # a ratio of two such medians ~8%, so 3 of those put the threshold near exp(0.24) ~ 1.27.
    assert 1.15 < threshold < 1.45
    assert noise_threshold(noisy, k=4.0) > threshold
    assert noise_threshold(noisy[:8]) > threshold
    assert threshold == pytest.approx(math.exp(3.0 * math.sqrt(2.0) * relative_se_of_median(noisy)))


def test_noise_threshold_ignores_a_single_stall() -> None:
    samples = timings(random.Random(6), 30)
    stalled = samples[:-1] + [samples[-1] * 50]
    assert noise_threshold(stalled) == pytest.approx(noise_threshold(samples), rel=0.1)
    with pytest.raises(ValueError):
        noise_threshold([1.0])


def test_relative_se_of_median_matches_theory_for_lognormal_noise() -> None:
    # sqrt(pi/2) * sigma / sqrt(n) for sigma = 0.246, n = 200: ~2.2%.
    samples = timings(random.Random(12), 200)
    theory = math.sqrt(math.pi / 2) * SIGMA_25 / math.sqrt(200)
    assert relative_se_of_median(samples) == pytest.approx(theory, rel=0.2)
    assert relative_se_of_median([3.0]) == math.inf  # one sample says nothing about spread


# --------------------------------------------------------------------------------------------------
# Adaptive repetition (fake clock, fake measurements: no real timing anywhere)


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def fake_query(
    rng: random.Random,
    clock: FakeClock,
    *,
    median_ms: float,
    sigma: float,
    seconds_per_call: float = 0.001,
    log: list[str] | None = None,
    name: str = "",
) -> Callable[[], float]:
    def measure() -> float:
        clock.now += seconds_per_call
        if log is not None:
            log.append(name)
        return median_ms * rng.lognormvariate(0.0, sigma)

    return measure


def test_adaptive_sampler_stops_early_on_a_huge_effect() -> None:
    rng, clock = random.Random(0), FakeClock()
    result = sample_adaptively(
        fake_query(rng, clock, median_ms=1.0, sigma=lognormal_sigma(0.05)),
        fake_query(rng, clock, median_ms=3.0, sigma=lognormal_sigma(0.05)),
        clock=clock,
    )
    assert result.comparison is not None
    assert result.comparison.decision == "slower"
    assert result.stop_reason == "decided"
    assert len(result.samples_a) == len(result.samples_b) == 5  # the very first check suffices
    assert result.comparison.n_candidate == 5


def test_adaptive_sampler_keeps_sampling_on_a_borderline_effect() -> None:
    rng, clock = random.Random(0), FakeClock()
    result = sample_adaptively(
        fake_query(rng, clock, median_ms=1.0, sigma=lognormal_sigma(0.10)),
        fake_query(rng, clock, median_ms=1.10, sigma=lognormal_sigma(0.10)),
        clock=clock,
    )
    # A true effect right at min_effect cannot be resolved either way, so it uses every sample.
    assert result.stop_reason == "max_samples"
    assert len(result.samples_a) == len(result.samples_b) == 60
    assert result.comparison is not None
    assert result.comparison.decision == "inconclusive"
    assert result.comparison.n_baseline == 60


def test_adaptive_sampler_takes_more_samples_for_a_moderate_effect_than_a_huge_one() -> None:
    used = []
    for shift in (3.0, 1.25):
        rng, clock = random.Random(2), FakeClock()
        result = sample_adaptively(
            fake_query(rng, clock, median_ms=1.0, sigma=lognormal_sigma(0.10)),
            fake_query(rng, clock, median_ms=shift, sigma=lognormal_sigma(0.10)),
            clock=clock,
        )
        assert result.comparison is not None and result.comparison.decision == "slower"
        used.append(len(result.samples_a))
    assert used[0] < used[1] < 60


def test_adaptive_sampler_alternates_the_order_of_a_and_b() -> None:
    rng, clock, log = random.Random(0), FakeClock(), list[str]()
    sample_adaptively(
        fake_query(rng, clock, median_ms=1.0, sigma=SIGMA_25, log=log, name="A"),
        fake_query(rng, clock, median_ms=1.0, sigma=SIGMA_25, log=log, name="B"),
        max_samples=6,
        min_samples=6,
        clock=clock,
    )
    assert "".join(log) == "AB" "BA" "AB" "BA" "AB" "BA"


def test_alternating_order_cancels_linear_drift() -> None:
    # Identical queries on a machine slowing down 1% per call, no other noise: with strictly A then
    # B, B would always be the slower one; with alternating order neither is.
    calls = [0]

    def drifting() -> float:
        calls[0] += 1
        return 1.0 + 0.01 * calls[0]

    result = sample_adaptively(drifting, drifting, min_samples=20, max_samples=20, clock=FakeClock())
    assert result.comparison is not None
    assert result.comparison.ratio == pytest.approx(1.0, abs=0.001)
    assert result.comparison.decision != "slower"


def test_adaptive_sampler_honours_the_time_cap_of_its_clock() -> None:
    rng, clock = random.Random(0), FakeClock()
    result = sample_adaptively(
        fake_query(rng, clock, median_ms=1.0, sigma=lognormal_sigma(0.10), seconds_per_call=0.125),
        fake_query(rng, clock, median_ms=1.10, sigma=lognormal_sigma(0.10), seconds_per_call=0.125),
        time_cap_s=2.0,
        clock=clock,
    )
    # 0.25 fake seconds per round (exact in binary): the cap is reached after 8 rounds.
    assert result.stop_reason == "time_cap"
    assert len(result.samples_a) == 8
    assert result.elapsed_s == 2.0
    assert result.comparison is not None and result.comparison.n_baseline == 8


def test_time_cap_never_cuts_below_min_samples() -> None:
    rng, clock = random.Random(0), FakeClock()
    result = sample_adaptively(
        fake_query(rng, clock, median_ms=1.0, sigma=SIGMA_25, seconds_per_call=10.0),
        fake_query(rng, clock, median_ms=1.0, sigma=SIGMA_25, seconds_per_call=10.0),
        time_cap_s=2.0,
        clock=clock,
    )
    assert len(result.samples_a) == 5
    assert result.stop_reason in ("time_cap", "decided")


def test_adaptive_sampler_without_b_stops_when_the_median_is_precise() -> None:
    rng, clock = random.Random(0), FakeClock()
    quiet = sample_adaptively(fake_query(rng, clock, median_ms=5.0, sigma=SIGMA_3), clock=clock)
    assert quiet.stop_reason == "precise"
    assert len(quiet.samples_a) == 5
    assert quiet.samples_b == ()
    assert quiet.comparison is None
    assert quiet.relative_se < 0.02

    # CV 25% needs n > (1.25 * 0.25 / 0.02)^2 ~ 245 samples for a 2% standard error: it hits the cap.
    noisy = sample_adaptively(fake_query(rng, clock, median_ms=5.0, sigma=SIGMA_25), clock=clock)
    assert noisy.stop_reason == "max_samples"
    assert len(noisy.samples_a) == 60
    assert noisy.relative_se >= 0.02


def test_later_looks_are_spaced_by_a_tenth_of_the_samples(monkeypatch: pytest.MonkeyPatch) -> None:
    looks: list[int] = []
    real = stats.compare_timings

    def counting(a: Sequence[float], b: Sequence[float], **kwargs: float) -> stats.TimingComparison:
        looks.append(len(a))
        return real(a, b, **kwargs)

    monkeypatch.setattr(stats, "compare_timings", counting)
    rng, clock = random.Random(0), FakeClock()
    result = sample_adaptively(
        fake_query(rng, clock, median_ms=1.0, sigma=lognormal_sigma(0.10)),
        fake_query(rng, clock, median_ms=1.10, sigma=lognormal_sigma(0.10)),
        min_samples=7,
        max_samples=300,
        time_cap_s=100.0,
        clock=clock,
    )
    # every 5 rounds while 10% of the samples is fewer, then every 10%; the last comparison is at the cap
    assert looks[:12] == [7, 12, 17, 22, 27, 32, 37, 42, 47, 52, 57, 62]
    assert looks[12:] == [68, 74, 81, 89, 97, 106, 116, 127, 139, 152, 167, 183, 201, 221, 243, 267, 293, 300]
    assert result.stop_reason == "max_samples" and result.comparison is not None and result.comparison.n_baseline == 300


def replay_decisions(shift: float, max_samples: int, trials: int = 30) -> Counter[str]:
    """Decisions of the adaptive sampler on sub-millisecond queries at CV 25%, as a replay samples them."""
    tally: Counter[str] = Counter()
    for seed in range(trials):
        rng, clock = random.Random(seed), FakeClock()
        result = sample_adaptively(
            fake_query(rng, clock, median_ms=0.7, sigma=SIGMA_25),
            fake_query(rng, clock, median_ms=0.7 * shift, sigma=SIGMA_25),
            min_samples=7,
            max_samples=max_samples,
            time_cap_s=100.0,
            clock=clock,
        )
        assert result.comparison is not None
        tally[result.comparison.decision] += 1
    return tally


def test_the_replay_budget_tells_a_one_point_two_slowdown_from_noise() -> None:
    from querywarden.measure import REPLAY_SAMPLE_FACTOR
    from querywarden.policy import MeasureSettings

    budget = REPLAY_SAMPLE_FACTOR * MeasureSettings().max_samples
    # x1.2 against the x1.1 minimum effect at CV 25%: 30 of 30 with the budget (some take 300+ pairs)
    slower = replay_decisions(1.2, budget)
    assert slower["slower"] >= 29, slower
    # the former cap of 160 pairs left 9 of 30 inconclusive, which is a pass
    assert replay_decisions(1.2, 160)["slower"] <= 24
    # and no change at all is never called slower, however long the sampler keeps looking
    same = replay_decisions(1.0, budget)
    assert same["slower"] == 0 and same["same"] >= 27, same


def test_early_looks_do_not_stop_on_a_chance_separation_of_a_few_noisy_pairs() -> None:
    """No change at CV 35%: at its full alpha a look at 12 or 22 pairs called these two runs slower."""
    sigma = lognormal_sigma(0.35)
    for seed, pairs in ((36, 22), (282, 12)):
        rng, clock = random.Random(seed), FakeClock()
        result = sample_adaptively(
            fake_query(rng, clock, median_ms=0.7, sigma=sigma),
            fake_query(rng, clock, median_ms=0.7, sigma=sigma),
            min_samples=7,
            max_samples=600,
            time_cap_s=100.0,
            clock=clock,
        )
        assert result.comparison is not None and result.comparison.decision != "slower", (seed, result.comparison)
        # the chance separation is there: the same first pairs, judged at the full alpha, say slower
        early_a, early_b = result.samples_a[:pairs], result.samples_b[:pairs]
        assert compare_timings(early_a, early_b, alpha=0.01).decision == "slower"
        assert compare_timings(early_a, early_b, alpha=0.005).decision != "slower"


def test_a_slow_query_that_fits_few_pairs_is_judged_at_the_full_alpha() -> None:
    """The time cap ends sampling right after the look at 7 pairs (made at alpha / 2): the answer
    given is a last look at the full alpha, as before early looks were made stricter."""
    rng, clock = random.Random(3), FakeClock()
    sigma = lognormal_sigma(0.10)
    result = sample_adaptively(
        fake_query(rng, clock, median_ms=400.0, sigma=sigma, seconds_per_call=0.4),
        fake_query(rng, clock, median_ms=460.0, sigma=sigma, seconds_per_call=0.46),
        min_samples=7, max_samples=600, time_cap_s=4.0, clock=clock,
    )
    assert result.stop_reason == "time_cap" and len(result.samples_a) == 7
    assert result.comparison is not None
    assert result.comparison.confidence == pytest.approx(0.98)  # 1 - 2 * alpha at alpha = 0.01
    assert result.comparison == compare_timings(result.samples_a, result.samples_b, alpha=0.01)


def test_adaptive_sampler_rejects_bad_settings() -> None:
    clock = FakeClock()
    with pytest.raises(ValueError):
        sample_adaptively(lambda: 1.0, min_samples=10, max_samples=5, clock=clock)
    with pytest.raises(ValueError):
        sample_adaptively(lambda: 1.0, check_every=0, clock=clock)
    with pytest.raises(ValueError):
        sample_adaptively(lambda: 1.0, time_cap_s=0.0, clock=clock)


# --------------------------------------------------------------------------------------------------
# What a regression costs


def test_extra_db_time_in_seconds_and_cores() -> None:
    extra = extra_db_time(38_000 / 12_000, 12_000)
    assert extra.ms_per_minute == pytest.approx(38_000)
    assert extra.cores == pytest.approx(38_000 / 60_000)
    assert extra.describe() == "+38.0 s of DB time per minute ≈ 0.63 cores at 12,000 calls/min"


def test_extra_db_time_small_and_negative_amounts() -> None:
    small = extra_db_time(0.5, 600)
    assert small.describe() == "+300 ms of DB time per minute ≈ 0.005 cores at 600 calls/min"
    saving = extra_db_time(-2.0, 30_000)
    assert saving.describe() == "-60.0 s of DB time per minute ≈ -1.00 cores at 30,000 calls/min"
    assert extra_db_time(0.0, 100).cores == 0.0
    with pytest.raises(ValueError):
        extra_db_time(1.0, -5)
