"""Deciding soundly whether query B is slower than query A on a noisy CI machine.

CI runners are noisy in three ways, and each tool here answers one of them:

* Samples of one query scatter (sub-millisecond queries by ~25%), with right-skewed outliers. So
  comparisons use medians and ranks, never means: `mann_whitney_u` and `ratio_of_medians_ci`.
* A difference can be real yet too small to matter, or too uncertain to call. `compare_timings`
  therefore says "slower" only when a rank test is significant *and* the whole confidence interval
  of the slowdown lies beyond a minimum effect, and "same" only when the interval shows any change
  is smaller than that effect; everything else is "inconclusive", never a silent pass or fail.
* Machine speed drifts over minutes and differs between connections (medians move 4-6%). Live
  comparisons interleave A and B (`sample_adaptively`); comparisons with a stored timing are
  normalised by a calibration probe (`calibrated_ratio`) and judged against a threshold that
  never goes below a floor for the noise within-run spread cannot see (`noise_threshold`).

Everything is pure standard library and deterministic: bootstraps use `random.Random(seed)`.
"""

from __future__ import annotations

import bisect
import functools
import math
import random
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

__all__ = [
    "AdaptiveResult",
    "Decision",
    "ExtraTime",
    "MannWhitneyResult",
    "TimingComparison",
    "calibrated_ratio",
    "compare_timings",
    "extra_db_time",
    "mann_whitney_u",
    "noise_threshold",
    "ratio_of_medians_ci",
    "relative_se_of_median",
    "sample_adaptively",
    "StopReason",
]

Decision = Literal["slower", "faster", "same", "inconclusive"]
StopReason = Literal["decided", "precise", "max_samples", "time_cap"]

# Exact Mann-Whitney p-values are used while the two sample sizes multiply to at most this; beyond
# it the normal approximation is accurate to well under a percentage point and far cheaper.
EXACT_MAX_PAIRS = 400

# Fewer samples than this on either side never yield a decision: with 4 or fewer per side the exact
# rank test cannot reach p <= 0.01, and the bootstrap distribution of a median from so few values is
# too coarse for its interval to mean much (one sample gives a zero-width interval).
MIN_DECISION_SAMPLES = 5

# The exact law of a resampled median costs O(n^2) big-integer work to tabulate (0.01 s at n = 100,
# 0.15 s at n = 250, once per n); larger samples draw the resampled median from Beta order
# statistics instead (`_BootstrapMedian.draw`), which is just as exact and costs the same at any n.
_MEDIAN_LAW_MAX_N = 100

# 1.4826 * MAD estimates a normal standard deviation; sqrt(pi/2) turns a standard deviation into
# the standard error of a median times sqrt(n) (asymptotic, normal data).
_MAD_TO_SD = 1.4826
_MEDIAN_SE_FACTOR = math.sqrt(math.pi / 2.0)


# --------------------------------------------------------------------------------------------------
# Validation helpers


def _finite(values: Sequence[float], name: str) -> list[float]:
    out = [float(v) for v in values]
    if not out:
        raise ValueError(f"{name}: no samples")
    if not all(math.isfinite(v) for v in out):
        raise ValueError(f"{name}: samples must be finite numbers")
    return out


def _positive(values: Sequence[float], name: str) -> list[float]:
    out = _finite(values, name)
    if min(out) <= 0.0:
        raise ValueError(f"{name}: timings must be positive (got {min(out)!r})")
    return out


# --------------------------------------------------------------------------------------------------
# Mann-Whitney U


@dataclass(frozen=True)
class MannWhitneyResult:
    """Mann-Whitney U test of "b is stochastically greater than a" (B tends to be slower).

    `u` counts the pairs (a_i, b_j) with b_j > a_i, ties counting one half, so it runs from 0 to
    n_a * n_b. `p_value` is the one-sided p-value P(U >= u) under the null hypothesis that both
    samples come from one distribution; `p_value_less` is P(U <= u), for "b is smaller".
    `method` says whether they come from exact enumeration or the normal approximation.
    """

    u: float
    p_value: float
    p_value_less: float
    n_a: int
    n_b: int
    method: Literal["exact", "normal"]

    @property
    def effect(self) -> float:
        """P(B > A) + P(B = A) / 2 for one random draw of each: 0.5 means no tendency either way."""
        return self.u / (self.n_a * self.n_b)


def _tie_groups(a: Sequence[float], b: Sequence[float]) -> list[tuple[int, int]]:
    """The pooled sample in ascending order as runs of equal values: (count in a, count in b)."""
    pooled = sorted([(v, 0) for v in a] + [(v, 1) for v in b])
    groups: list[tuple[int, int]] = []
    i = 0
    while i < len(pooled):
        j = i
        in_b = 0
        while j < len(pooled) and pooled[j][0] == pooled[i][0]:
            in_b += pooled[j][1]
            j += 1
        groups.append((j - i - in_b, in_b))
        i = j
    return groups


def _u2_from_groups(groups: Sequence[tuple[int, int]]) -> int:
    """2U (an integer even with ties): each b value scores 2 per smaller a value, 1 per equal one."""
    u2 = 0
    a_below = 0
    for in_a, in_b in groups:
        u2 += in_b * (2 * a_below + in_a)
        a_below += in_a
    return u2


def _exact_u2_distribution(sizes: Sequence[int], n_b: int) -> dict[int, int]:
    """How many of the C(N, n_b) ways to label n_b pooled values "b" give each value of 2U.

    This is the permutation distribution conditional on the observed tie pattern, so it is exact
    with ties too. Dynamic programming over the tie groups in ascending order; the state is
    (b values placed so far, 2U so far). Putting j of a group's t values in b adds
    j * (2 * a_below + (t - j)) to 2U, in C(t, j) ways.
    """
    n_a = sum(sizes) - n_b
    dp: list[dict[int, int]] = [dict() for _ in range(n_b + 1)]
    dp[0][0] = 1
    placed = 0
    for t in sizes:
        # Descending k lets the update run in place: dp[k] is read before any smaller k writes it.
        for k in range(min(placed, n_b), -1, -1):
            source = dp[k]
            if not source:
                continue
            a_below = placed - k
            for j in range(1, min(t, n_b - k) + 1):
                if a_below + (t - j) > n_a:
                    continue
                step = j * (2 * a_below + (t - j))
                ways = math.comb(t, j)
                target = dp[k + j]
                for u2, count in source.items():
                    target[u2 + step] = target.get(u2 + step, 0) + count * ways
        placed += t
        # States with more a values than exist can never complete: drop them.
        for k in range(0, min(max(0, placed - n_a), n_b + 1)):
            dp[k] = {}
    return dp[n_b]


def _normal_sf(z: float) -> float:
    """P(Z >= z) for a standard normal Z, accurate in the far tail (erfc, not 1 - cdf)."""
    return 0.5 * math.erfc(z / math.sqrt(2.0))


def mann_whitney_u(a: Sequence[float], b: Sequence[float]) -> MannWhitneyResult:
    """Rank test of whether `b` tends to be larger than `a` (one-sided), robust to outliers.

    Ranks ignore how far an outlier lies, and the test needs no distribution shape, which suits
    skewed timing noise. Small samples (n_a * n_b <= EXACT_MAX_PAIRS) get the exact permutation
    p-value, ties included; larger ones the normal approximation with tie-corrected variance and a
    continuity correction of one half.
    """
    xs = _finite(a, "a")
    ys = _finite(b, "b")
    n_a, n_b = len(xs), len(ys)
    groups = _tie_groups(xs, ys)
    u2 = _u2_from_groups(groups)
    if n_a * n_b <= EXACT_MAX_PAIRS:
        dist = _exact_u2_distribution([in_a + in_b for in_a, in_b in groups], n_b)
        total = math.comb(n_a + n_b, n_b)
        upper = sum(count for value, count in dist.items() if value >= u2)
        lower = sum(count for value, count in dist.items() if value <= u2)
        return MannWhitneyResult(u2 / 2, upper / total, lower / total, n_a, n_b, "exact")

    n = n_a + n_b
    ties = sum((t**3 - t) for t in (in_a + in_b for in_a, in_b in groups))
    variance = n_a * n_b / 12.0 * ((n + 1) - ties / (n * (n - 1)))
    u = u2 / 2
    if variance <= 0.0:  # every value equal: no evidence either way
        return MannWhitneyResult(u, 1.0, 1.0, n_a, n_b, "normal")
    mean = n_a * n_b / 2.0
    sd = math.sqrt(variance)
    p_upper = min(1.0, _normal_sf((u - mean - 0.5) / sd))
    p_lower = min(1.0, _normal_sf((mean - u - 0.5) / sd))
    return MannWhitneyResult(u, p_upper, p_lower, n_a, n_b, "normal")


# --------------------------------------------------------------------------------------------------
# Bootstrap confidence interval of a ratio of medians


@functools.lru_cache(maxsize=512)
def _bootstrap_median_law(n: int) -> tuple[tuple[int, ...], tuple[int, ...], tuple[float, ...]]:
    """Exact law of the median of a size-n resample, as positions in the sorted original sample.

    Resampling n values with replacement from sorted x draws n positions uniformly from 0..n-1.
    The resample's median is x[K1] for odd n and (x[K1] + x[K2]) / 2 for even n, where K1 and K2
    are the m-th and (m+1)-th smallest positions drawn, m = ceil(n/2). Returned: the possible
    (K1, K2) as two aligned tuples (K2 = K1 for odd n) and their cumulative probabilities.

    With C_i = how many draws are <= i, a Binomial(n, (i+1)/n): P(K1 <= i) = P(C_i >= m).
    For even n, K1 = i < j = K2 means m draws fall in 0..i with at least one at i, and the other m
    in j..n-1 with at least one at j: C(n, m) * ((i+1)^m - i^m) * ((n-j)^m - (n-j-1)^m) ways out
    of n^n; P(K1 = K2 = i) is the rest of P(K1 = i).

    Integers keep every probability exact until one final division per entry. The law depends on
    n only, so it is cached; drawing from it then costs one uniform and one bisection.
    """
    m = (n + 1) // 2
    tails = [
        sum(math.comb(n, c) * (i + 1) ** c * (n - 1 - i) ** (n - c) for c in range(m, n + 1))
        for i in range(n)
    ]
    lows: list[int] = []
    highs: list[int] = []
    weights: list[int] = []
    for i in range(n):
        at_i = tails[i] - (tails[i - 1] if i else 0)
        if n % 2 == 1:
            lows.append(i)
            highs.append(i)
            weights.append(at_i)
            continue
        low_part = math.comb(n, m) * ((i + 1) ** m - i**m)
        apart = [low_part * ((n - j) ** m - (n - j - 1) ** m) for j in range(i + 1, n)]
        lows.extend([i] * (n - i))
        highs.extend(range(i, n))
        weights.append(at_i - sum(apart))
        weights.extend(apart)
    scale = n**n
    cumulative: list[float] = []
    running = 0
    for w in weights:
        running += w
        cumulative.append(running / scale)
    return tuple(lows), tuple(highs), tuple(cumulative)


class _BootstrapMedian:
    """Draws the median of a with-replacement resample of `values` without building the resample.

    Equivalent in distribution to `statistics.median(rng.choices(values, k=n))`, but without
    building and sorting n values per resample, which keeps the repeated comparisons of the
    adaptive sampler cheap at hundreds of samples. Up to _MEDIAN_LAW_MAX_N values a draw is one
    uniform and a bisection in the tabulated law (`_bootstrap_median_law`; `tabulated` is True).

    Beyond that, a draw uses order statistics: resampling draws n positions floor(n * V_j) with V_j
    uniform on (0, 1), and floor is monotone, so the k-th smallest position is floor(n * V_(k)), the
    k-th order statistic of n uniforms. V_(m) ~ Beta(m, n - m + 1), and given it, the next one is
    V_(m) + (1 - V_(m)) * Beta(1, n - m) (the smallest of the n - m uniforms above it). Two Beta
    draws per median, whatever n.
    """

    def __init__(self, values: Sequence[float]) -> None:
        self.values = sorted(values)
        n = len(self.values)
        self.m = (n + 1) // 2
        self.tabulated = n <= _MEDIAN_LAW_MAX_N
        self.cdf: tuple[float, ...] = ()
        self.medians: list[float] = []
        if self.tabulated:
            lows, highs, self.cdf = _bootstrap_median_law(n)
            self.medians = [(self.values[i] + self.values[j]) / 2.0 for i, j in zip(lows, highs)]

    def draw(self, rng: random.Random) -> float:
        if self.tabulated:
            return self.medians[bisect.bisect_right(self.cdf, rng.random())]
        values, n, m = self.values, len(self.values), self.m
        low = rng.betavariate(m, n - m + 1)
        k1 = min(int(n * low), n - 1)
        if n % 2 == 1:
            return values[k1]
        high = low + (1.0 - low) * rng.betavariate(1, n - m)
        return (values[k1] + values[min(int(n * high), n - 1)]) / 2.0


def _quantile(ordered: Sequence[float], q: float) -> float:
    """Linear interpolation between order statistics (the usual "type 7" sample quantile)."""
    pos = q * (len(ordered) - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def ratio_of_medians_ci(
    a: Sequence[float],
    b: Sequence[float],
    *,
    confidence: float = 0.95,
    resamples: int = 2000,
    seed: int = 0,
) -> tuple[float, float, float]:
    """median(b) / median(a) with a bootstrap percentile confidence interval: (ratio, low, high).

    Each side is resampled independently (the samples are not paired), and the interval is the
    central `confidence` share of the resampled ratios. A fixed `random.Random(seed)` makes the
    result reproducible run to run. Medians, not means, so one stalled sample moves nothing.
    """
    xs = _positive(a, "a")
    ys = _positive(b, "b")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be between 0 and 1, got {confidence!r}")
    if resamples < 1:
        raise ValueError(f"resamples must be at least 1, got {resamples!r}")
    ratio = statistics.median(ys) / statistics.median(xs)
    rng = random.Random(seed)
    boot_a, boot_b = _BootstrapMedian(xs), _BootstrapMedian(ys)
    if boot_a.tabulated and boot_b.tabulated:
        # `_BootstrapMedian.draw` inlined: this loop is the hot path of every comparison.
        uniform, where = rng.random, bisect.bisect_right
        cdf_a, medians_a, cdf_b, medians_b = boot_a.cdf, boot_a.medians, boot_b.cdf, boot_b.medians
        ratios = sorted(
            medians_b[where(cdf_b, uniform())] / medians_a[where(cdf_a, uniform())] for _ in range(resamples)
        )
    else:
        ratios = sorted(boot_b.draw(rng) / boot_a.draw(rng) for _ in range(resamples))
    tail = (1.0 - confidence) / 2.0
    return ratio, _quantile(ratios, tail), _quantile(ratios, 1.0 - tail)


# --------------------------------------------------------------------------------------------------
# The decision


@dataclass(frozen=True)
class TimingComparison:
    """The verdict of `compare_timings` with the numbers behind it.

    `ratio` is median(candidate) / median(baseline); [`ci_low`, `ci_high`] its bootstrap interval at
    `confidence` = 1 - 2 * alpha. `p_value` is the one-sided Mann-Whitney p-value in the direction
    of the decision (or of the observed change when there is none): candidate slower when the ratio
    is >= 1, faster otherwise.
    """

    ratio: float
    ci_low: float
    ci_high: float
    p_value: float
    decision: Decision
    n_baseline: int
    n_candidate: int
    confidence: float


def compare_timings(
    baseline: Sequence[float],
    candidate: Sequence[float],
    *,
    min_effect: float = 1.10,
    alpha: float = 0.01,
) -> TimingComparison:
    """Is `candidate` slower than `baseline` by at least `min_effect`? Four honest answers.

    * "slower": the rank test says candidate > baseline at level `alpha`, AND the interval's lower
      bound exceeds `min_effect`. The test guards against noise (its false-positive rate is at
      most alpha even where the bootstrap interval is optimistic, at small n); the interval
      guards against calling a real but negligible change a regression.
    * "faster": the mirror image (p <= alpha the other way and ci_high < 1 / min_effect).
    * "same": the interval lies inside [1 / min_effect, min_effect], i.e. any change is smaller
      than one worth reporting. This is an equivalence test (TOST), and TOST at level alpha uses
      a 1 - 2*alpha interval; that is why the interval's confidence is 1 - 2*alpha (each bound is
      then a one-sided 1 - alpha bound, matching the test for "slower" and "faster").
    * "inconclusive": anything else (too noisy or too few samples to tell); take more samples.

    Fewer than MIN_DECISION_SAMPLES on either side is always "inconclusive".
    """
    xs = _positive(baseline, "baseline")
    ys = _positive(candidate, "candidate")
    if not 0.0 < alpha < 0.5:
        raise ValueError(f"alpha must be between 0 and 0.5, got {alpha!r}")
    if not min_effect >= 1.0:
        raise ValueError(f"min_effect is a ratio >= 1 (e.g. 1.10 for 10%), got {min_effect!r}")
    confidence = 1.0 - 2.0 * alpha
    ratio, low, high = ratio_of_medians_ci(xs, ys, confidence=confidence)
    test = mann_whitney_u(xs, ys)
    p_slower, p_faster = test.p_value, test.p_value_less

    decision: Decision = "inconclusive"
    if min(len(xs), len(ys)) >= MIN_DECISION_SAMPLES:
        if p_slower <= alpha and low > min_effect:
            decision = "slower"
        elif p_faster <= alpha and high < 1.0 / min_effect:
            decision = "faster"
        elif 1.0 / min_effect <= low and high <= min_effect:
            decision = "same"

    if decision == "slower":
        p_value = p_slower
    elif decision == "faster":
        p_value = p_faster
    else:
        p_value = p_slower if ratio >= 1.0 else p_faster
    return TimingComparison(ratio, low, high, p_value, decision, len(xs), len(ys), confidence)


# --------------------------------------------------------------------------------------------------
# Comparisons with a stored timing


def calibrated_ratio(ratio: float, probe_before_ms: float, probe_after_ms: float) -> float:
    """A stored-vs-now timing ratio with the machine's own change in speed divided out.

    The probe is a fixed CPU-bound query timed on the same connection in both runs; if it got 20%
    slower, the machine did, and a query 20% slower is then unchanged: ratio / (after / before).
    """
    named = (("ratio", ratio), ("probe_before_ms", probe_before_ms), ("probe_after_ms", probe_after_ms))
    for name, value in named:
        if not (math.isfinite(value) and value > 0.0):
            raise ValueError(f"{name} must be a positive number, got {value!r}")
    return ratio / (probe_after_ms / probe_before_ms)


def relative_se_of_median(samples: Sequence[float]) -> float:
    """Relative standard error of the median of `samples`, estimated robustly.

    The spread is 1.4826 * MAD of the log timings (log, because timing noise is multiplicative and
    right-skewed; MAD, because one stall should not inflate it), and the median's standard error
    is sqrt(pi/2) * spread / sqrt(n). In log units this is the relative error (0.02 = 2%).
    One sample says nothing about spread: its relative SE is infinite.
    """
    xs = _positive(samples, "samples")
    if len(xs) < 2:
        return math.inf
    logs = [math.log(v) for v in xs]
    centre = statistics.median(logs)
    spread = _MAD_TO_SD * statistics.median([abs(v - centre) for v in logs])
    return _MEDIAN_SE_FACTOR * spread / math.sqrt(len(xs))


def noise_threshold(samples: Sequence[float], *, floor: float = 1.10, k: float = 3.0) -> float:
    """The ratio a stored-timing comparison must exceed before it may be called slower.

    Comparing this run's median with a stored one (each from len(samples) runs of the query)
    cannot interleave, so the threshold comes from the measured spread: the log of the ratio of two
    such medians has standard error sqrt(2) * `relative_se_of_median`, and the threshold is
    exp(k * that). It never goes below `floor`, which stands for what within-run spread cannot see:
    medians differ ~4-6% between connections and drift over minutes, however many samples are taken.
    """
    if len(samples) < 2:
        raise ValueError("need at least 2 samples to measure their spread")
    if not floor >= 1.0:
        raise ValueError(f"floor is a ratio >= 1, got {floor!r}")
    if not k > 0.0:
        raise ValueError(f"k must be positive, got {k!r}")
    return max(floor, math.exp(k * math.sqrt(2.0) * relative_se_of_median(samples)))


# --------------------------------------------------------------------------------------------------
# Adaptive repetition


# Looks of the adaptive sampler before this many rounds decide at half its alpha (the interval then
# at 1 - alpha): with a handful of samples the bootstrap interval is too narrow, and a chance
# separation of 12 or 22 noisy pairs was the sampler's only false "slower" (2 of 300 simulated
# replays of no change at CV 35%; none with this rule). A large effect still stops at the first
# look: 5 pairs that do not overlap give p = 0.004. The last look, when the samples or the time
# run out, is at the full alpha, so a slow query that fits only a few pairs is judged as before.
FULL_ALPHA_SAMPLES = 40


def _alpha_at(n: int, alpha: float) -> float:
    """The level a look at `n` rounds stops the sampler at: half of `alpha` below FULL_ALPHA_SAMPLES."""
    return alpha / 2.0 if n < FULL_ALPHA_SAMPLES else alpha


def _next_check(n: int, check_every: int) -> int:
    """The round of the adaptive sampler's next look after one at round `n`.

    Every `check_every` rounds while samples are few; once 10% of them is more, every 10%: five
    more pairs move the interval of 300 pairs by next to nothing, and each look costs a comparison
    and adds a little to the error rate of repeated looks.
    """
    return n + max(check_every, n // 10)


@dataclass(frozen=True)
class AdaptiveResult:
    """What `sample_adaptively` measured and why it stopped.

    `comparison` is the final `compare_timings(samples_a, samples_b)`, None without B.
    `relative_se` is that of A's median. `stop_reason` is "decided" (a clear comparison),
    "precise" (A alone, its median known well enough), "max_samples" or "time_cap".
    """

    samples_a: tuple[float, ...]
    samples_b: tuple[float, ...]
    comparison: TimingComparison | None
    relative_se: float
    stop_reason: StopReason
    elapsed_s: float


def sample_adaptively(
    measure_a: Callable[[], float],
    measure_b: Callable[[], float] | None = None,
    *,
    min_samples: int = 5,
    max_samples: int = 60,
    time_cap_s: float = 2.0,
    check_every: int = 5,
    min_effect: float = 1.10,
    alpha: float = 0.01,
    target_rse: float = 0.02,
    clock: Callable[[], float] = time.perf_counter,
) -> AdaptiveResult:
    """Measure until the answer is clear, the samples run out, or the time does.

    With B, each round measures A and B once, alternating the order (A B, B A, A B, ...): linear
    drift of machine speed then hits both equally, and neither query always runs second (in the
    other's warm cache). From `min_samples` rounds on `compare_timings` runs, again every
    `check_every` rounds, or every 10% more rounds once that is more (`_next_check`): a clear
    decision ("slower", "faster", "same") stops, "inconclusive" asks for more, so a close call
    keeps sampling until the cap. Without B, rounds measure A until `relative_se_of_median` <
    `target_rse`.

    Sampling also stops at `max_samples` rounds or when `clock` says `time_cap_s` has passed. The
    first `min_samples` rounds are always taken, so every answer rests on at least that many.

    Every check is a level-`alpha` look, and repeated looks let errors accumulate near the
    boundary: in simulation (CV 10%, the default 12 looks) a true ratio of exactly `min_effect` came
    out "slower" in ~5% and "same" in ~2% of runs, against under 1% for one look at 60 samples. No
    change at all (ratio 1.0) was never called "slower", since the interval must clear `min_effect`,
    not 1 — at CV 10%; at CV 35% (300 runs, up to 600 rounds) 2 came out "slower" at early looks
    (12 and 22 rounds) until looks before FULL_ALPHA_SAMPLES rounds decided at alpha / 2 (now
    none). A timing-only verdict is still measured again before it stands
    (`compare.flagged_on_timing_alone`). Spacing the later looks by 10% of the samples
    keeps their number low (about 37 looks up to 600 rounds, where a look every 5 rounds would make
    120). Pass a smaller `alpha` (e.g. alpha / number of looks) where the boundary matters.
    """
    if min_samples < 1:
        raise ValueError(f"min_samples must be at least 1, got {min_samples!r}")
    if max_samples < min_samples:
        raise ValueError(f"max_samples ({max_samples}) is below min_samples ({min_samples})")
    if check_every < 1:
        raise ValueError(f"check_every must be at least 1, got {check_every!r}")
    if not time_cap_s > 0.0:
        raise ValueError(f"time_cap_s must be positive, got {time_cap_s!r}")

    samples_a: list[float] = []
    samples_b: list[float] = []
    comparison: TimingComparison | None = None
    compared_at = 0
    check_at = min_samples
    reason: StopReason
    start = clock()
    while True:
        if measure_b is None:
            samples_a.append(measure_a())
        elif len(samples_a) % 2 == 0:
            samples_a.append(measure_a())
            samples_b.append(measure_b())
        else:
            samples_b.append(measure_b())
            samples_a.append(measure_a())
        n = len(samples_a)

        if n >= check_at:
            check_at = _next_check(n, check_every)
            if measure_b is None:
                if relative_se_of_median(samples_a) < target_rse:
                    reason = "precise"
                    break
            else:
                comparison = compare_timings(samples_a, samples_b, min_effect=min_effect, alpha=_alpha_at(n, alpha))
                compared_at = n
                if comparison.decision != "inconclusive":
                    reason = "decided"
                    break
        if n >= max_samples:
            reason = "max_samples"
            break
        if n >= min_samples and clock() - start >= time_cap_s:
            reason = "time_cap"
            break

    elapsed = clock() - start
    if measure_b is not None and reason != "decided" and (compared_at != len(samples_a) or _alpha_at(compared_at, alpha) < alpha):
        # the samples ran out: one last look, at the full alpha (a slow query may only fit a few pairs)
        comparison = compare_timings(samples_a, samples_b, min_effect=min_effect, alpha=alpha)
    return AdaptiveResult(
        samples_a=tuple(samples_a),
        samples_b=tuple(samples_b),
        comparison=comparison,
        relative_se=relative_se_of_median(samples_a),
        stop_reason=reason,
        elapsed_s=elapsed,
    )


# --------------------------------------------------------------------------------------------------
# What a regression costs


@dataclass(frozen=True)
class ExtraTime:
    """Database time a per-call slowdown adds at a call rate, in the units capacity is bought in."""

    per_call_extra_ms: float
    calls_per_minute: float

    @property
    def ms_per_minute(self) -> float:
        return self.per_call_extra_ms * self.calls_per_minute

    @property
    def cores(self) -> float:
        """CPU cores kept busy: milliseconds of work per minute over the 60,000 ms in a minute."""
        return self.ms_per_minute / 60_000.0

    def describe(self) -> str:
        """E.g. "+38.0 s of DB time per minute ≈ 0.63 cores at 12,000 calls/min"."""
        ms = self.ms_per_minute
        sign = "-" if ms < 0 else "+"
        size = abs(ms)
        if size >= 1000.0:
            amount = f"{size / 1000.0:,.1f} s"
        elif size >= 10.0:
            amount = f"{size:,.0f} ms"
        else:
            amount = f"{size:.2g} ms"
        cores = abs(self.cores)
        cores_text = f"{cores:,.2f}" if cores >= 0.01 or cores == 0.0 else f"{cores:.1g}"
        if ms < 0:
            cores_text = "-" + cores_text
        rate = self.calls_per_minute
        rate_text = f"{rate:,.0f}" if rate >= 10 or rate == int(rate) else f"{rate:.2g}"
        return f"{sign}{amount} of DB time per minute ≈ {cores_text} cores at {rate_text} calls/min"


def extra_db_time(per_call_extra_ms: float, calls_per_minute: float) -> ExtraTime:
    """The cost of `per_call_extra_ms` more per call at `calls_per_minute` (negative = a saving)."""
    if not math.isfinite(per_call_extra_ms):
        raise ValueError(f"per_call_extra_ms must be a finite number, got {per_call_extra_ms!r}")
    if not (math.isfinite(calls_per_minute) and calls_per_minute >= 0.0):
        raise ValueError(f"calls_per_minute must be a non-negative number, got {calls_per_minute!r}")
    return ExtraTime(per_call_extra_ms, calls_per_minute)
