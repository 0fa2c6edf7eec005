"""The verdict's statistics, checked against scipy on known inputs and at their edges."""

import math

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf
from scipy import stats
from statsmodels.stats.weightstats import ttost_paired

from tasks.common.stats import (
    Estimate,
    gain_trend,
    holm,
    mcnemar_exact,
    mean_ci,
    paired_difference,
    seeds_needed,
    tost,
    trend_sentence,
    verdict,
    verdict_kind,
)

MARGIN = 0.01  # one point
WIDE = Estimate(0.05, (-0.03, 0.13), 0.9)  # an equivalence interval far outside the margins


def test_mean_ci_is_the_t_interval_over_runs():
    runs = [0.61, 0.64, 0.66, 0.60]
    estimate = mean_ci(runs, 0.95)
    expected = stats.t.interval(0.95, 3, loc=sum(runs) / 4, scale=stats.sem(runs))
    assert estimate.mean == pytest.approx(0.6275)
    assert estimate.ci == pytest.approx(expected)


def test_paired_difference_matches_scipys_paired_t_test():
    augmented, original = [0.70, 0.68, 0.71], [0.62, 0.61, 0.66]
    difference = paired_difference(augmented, original, 0.95)
    assert difference.mean == pytest.approx(0.0666666667)
    assert difference.p_value == pytest.approx(stats.ttest_rel(augmented, original).pvalue)
    deltas = [a - o for a, o in zip(augmented, original)]
    assert difference.ci == pytest.approx(stats.t.interval(0.95, 2, loc=sum(deltas) / 3, scale=stats.sem(deltas)))


def test_one_seed_gives_no_interval_and_no_verdict():
    difference, equivalence = paired_difference([0.7], [0.6], 0.95), tost([0.7], [0.6], MARGIN, 0.05)
    assert difference.ci is None and difference.p_value is None
    assert equivalence.ci is None and equivalence.p_value is None
    assert verdict_kind(difference, equivalence, 0.95, MARGIN) == "inconclusive"
    assert seeds_needed([0.7], [0.6], 0.95, MARGIN) is None  # no spread to extrapolate from
    sentence = verdict("augmented", difference, equivalence, 1, 0.95, MARGIN)
    assert "inconclusive" in sentence and "no confidence interval" in sentence and "improves" not in sentence


def test_equal_runs_give_a_zero_width_interval():
    assert mean_ci([0.5, 0.5, 0.5], 0.95).ci == (0.5, 0.5)
    difference = paired_difference([0.6, 0.6], [0.6, 0.6], 0.95)
    assert difference.ci == (0.0, 0.0) and difference.p_value == 1.0


@pytest.mark.parametrize(
    ("ci", "expected"),
    [
        ((0.01, 0.09), "augmented improves test accuracy by 5.0 points"),
        (
            (0.0, 0.10),
            "inconclusive (+5.0 points). Paired t-test: no detectable difference",
        ),  # touching 0 is not an improvement
        ((-0.02, 0.12), "the interval includes 0). Two one-sided tests: not shown equivalent within ±1.0 points"),
        ((-0.09, -0.01), "augmented hurts test accuracy by 5.0 points"),
    ],
)
def test_verdict_claims_a_change_only_when_the_interval_excludes_zero(ci, expected):
    mean = 0.05 if ci[0] >= -0.02 else -0.05
    assert expected in verdict("augmented", Estimate(mean, ci, 0.04), WIDE, 3, 0.95, MARGIN)


def test_mcnemar_counts_only_disagreements_and_matches_the_exact_binomial_test():
    treated = np.array([True] * 8 + [False] * 2 + [True] * 30)
    baseline = np.array([False] * 8 + [True] * 2 + [True] * 30)
    result = mcnemar_exact(treated, baseline)
    assert (result["treated_only_correct"], result["baseline_only_correct"]) == (8, 2)
    assert result["p_value"] == pytest.approx(stats.binomtest(2, 10, 0.5).pvalue)


def test_holm_adjusts_step_down_and_keeps_missing_values_missing():
    # sorted p: 0.01, 0.03, 0.04 -> x3, x2, x1 with running max: 0.03, 0.06, 0.06
    assert holm([0.04, 0.01, None, 0.03]) == pytest.approx([0.06, 0.03, None, 0.06])
    assert holm([None]) == [None]


def test_a_significant_difference_can_fail_the_correction():
    difference = Estimate(0.05, (0.01, 0.09), 0.03)
    assert "improves" in verdict("augmented", difference, WIDE, 3, 0.95, MARGIN, adjusted_p=0.03, comparisons=1)
    sentence = verdict("augmented", difference, WIDE, 3, 0.95, MARGIN, adjusted_p=0.09, comparisons=3)
    assert "no detectable difference" in sentence and "Holm-adjusted p = 0.09 over 3 comparisons" in sentence
    assert "not significant after the correction" in sentence


@pytest.mark.parametrize(
    ("treated", "baseline", "margin"),
    [
        ([0.851, 0.846, 0.853, 0.849], [0.848, 0.850, 0.849, 0.851], 0.01),  # equivalent
        ([0.866, 0.862, 0.834], [0.825, 0.832, 0.826], 0.01),  # far from it
        ([0.80, 0.83, 0.79, 0.82, 0.81], [0.81, 0.80, 0.80, 0.83, 0.79], 0.02),
    ],
)
def test_tost_matches_statsmodels_ttost_paired(treated, baseline, margin):
    equivalence = tost(treated, baseline, margin, 0.05)
    expected_p = ttost_paired(np.array(treated), np.array(baseline), -margin, margin)[0]
    assert equivalence.p_value == pytest.approx(expected_p, rel=1e-9)
    difference = paired_difference(treated, baseline, 0.95)
    equivalent = verdict_kind(difference, equivalence, 0.95, margin) == "equivalent"
    assert equivalent == (expected_p < 0.05)  # the interval rule and the TOST p-value agree
    assert equivalence.ci == pytest.approx(mean_ci([t - b for t, b in zip(treated, baseline)], 0.90).ci)


def test_an_interval_touching_the_margin_is_not_equivalent():
    treated, baseline = [0.851, 0.846, 0.853, 0.849], [0.848, 0.850, 0.849, 0.851]
    touching = tost(treated, baseline, 1.0, 0.05).ci[1]  # the margin the 90% interval's upper end touches
    difference = paired_difference(treated, baseline, 0.95)
    at_margin = tost(treated, baseline, touching, 0.05)
    assert at_margin.p_value == pytest.approx(0.05) and ttost_paired(
        np.array(treated), np.array(baseline), -touching, touching
    )[0] == pytest.approx(0.05)
    assert (
        verdict_kind(difference, at_margin, 0.95, touching) == "inconclusive"
    )  # strict: p < 0.05 needs the interval inside
    assert verdict_kind(difference, at_margin, 0.95, math.nextafter(touching, 1)) == "equivalent"
    touching_low = Estimate(0.0, (-MARGIN, 0.005), 0.05)  # the lower end on -1 point, the same float
    assert verdict_kind(Estimate(0.0, (-0.02, 0.02), 0.9), touching_low, 0.95, MARGIN) == "inconclusive"


def test_equal_differences_are_decided_by_their_mean_alone():
    same = [0.5, 0.75, 0.625]
    gain = 2**-7  # 0.78 points, exact in binary, so every difference is exactly equal
    ahead = [value + gain for value in same]
    difference, equivalence = paired_difference(ahead, same, 0.95), tost(ahead, same, MARGIN, 0.05)
    assert equivalence.p_value == 0.0 and equivalence.ci == (gain, gain)
    assert verdict_kind(difference, equivalence, 0.95, MARGIN) == "improves"  # the t-test's rule comes first
    assert tost(ahead, same, gain, 0.05).p_value == 1.0  # the mean on the margin: not inside
    none = paired_difference(same, same, 0.95), tost(same, same, MARGIN, 0.05)
    assert verdict_kind(*none, 0.95, MARGIN) == "equivalent"
    sentence = verdict("augmented", *none, 3, 0.95, MARGIN)
    assert "equivalent within ±1.0 points" in sentence and "decided by two one-sided tests at 5%" in sentence
    assert seeds_needed(ahead, same, 0.95, MARGIN) is None


def seeds_by_direct_search(differences: list[float], confidence: float, margin: float, comparisons: int) -> int:
    """The first n whose t-intervals, at the observed mean and standard deviation, exclude 0 or fit inside the
    margins."""
    mean, deviation = abs(float(np.mean(differences))), float(np.std(differences, ddof=1))
    for seeds in range(2, 100_000):
        scale = deviation / math.sqrt(seeds)
        low, _ = stats.t.interval(1 - (1 - confidence) / comparisons, seeds - 1, loc=mean, scale=scale)
        low_90, high_90 = stats.t.interval(1 - 2 * (1 - confidence), seeds - 1, loc=mean, scale=scale)
        if low > 0 or (-margin < low_90 and high_90 < margin):
            return seeds
    raise AssertionError("no count found")


@pytest.mark.parametrize(
    ("differences", "margin", "comparisons"),
    [
        ([0.041, 0.030, 0.008], 0.01, 1),  # a gain, told from 0 first
        ([0.041, 0.030, 0.008], 0.01, 6),  # more seeds under Holm's correction
        ([0.004, -0.006, 0.009, -0.002], 0.01, 1),  # near 0: fits inside the margins first
        ([0.012, -0.004, 0.010], 0.01, 1),  # a mean near the margin
        ([0.001, -0.001], 0.005, 3),
    ],
)
def test_seeds_needed_matches_a_direct_search_over_seed_counts(differences, margin, comparisons):
    estimate = seeds_needed(differences, [0.0] * len(differences), 0.95, margin, comparisons)
    assert estimate == seeds_by_direct_search(differences, 0.95, margin, comparisons)


def test_an_inconclusive_comparison_needs_more_seeds_than_it_has():
    augmented, original = [0.866, 0.862, 0.834], [0.825, 0.832, 0.826]
    difference, equivalence = paired_difference(augmented, original, 0.95), tost(augmented, original, MARGIN, 0.05)
    adjusted = 3 * difference.p_value
    assert verdict_kind(difference, equivalence, 0.95, MARGIN, adjusted) == "inconclusive"
    needed = seeds_needed(augmented, original, 0.95, MARGIN, comparisons=3)
    assert needed > 3
    sentence = verdict(
        "augmented", difference, equivalence, 3, 0.95, MARGIN, adjusted_p=adjusted, comparisons=3, needed=needed
    )
    assert f"About {needed} seeds would decide it at the spread seen (an estimate from 3 seeds)." in sentence


def test_the_gain_trend_matches_statsmodels_least_squares_with_a_fixed_effect_per_seed():
    sizes, seeds = [25, 50, 100, 250, 1000], [0, 1, 2]
    offsets, noise = [0.01, -0.02, 0.005], np.random.default_rng(0).normal(0, 0.004, (5, 3))
    gains = [
        [0.03 - 0.008 * math.log2(size / 25) + offsets[seed] + noise[i, seed] for seed in seeds]
        for i, size in enumerate(sizes)
    ]
    trend = gain_trend(sizes, gains, 0.95)
    rows = pd.DataFrame(
        [{"gain": gains[i][seed], "size": size, "seed": seed} for i, size in enumerate(sizes) for seed in seeds]
    )
    reference = smf.ols("gain ~ np.log2(size) + C(seed)", rows).fit()
    assert trend.mean == pytest.approx(reference.params["np.log2(size)"])
    assert trend.ci == pytest.approx(tuple(reference.conf_int(0.05).loc["np.log2(size)"]))
    assert trend.p_value == pytest.approx(reference.pvalues["np.log2(size)"])
    assert trend.mean == pytest.approx(-0.008, abs=0.002)
    assert trend_sentence("augmented", trend, 0.95).startswith(
        "augmented vs original: the gain shrinks as data grows "
        f"({100 * trend.mean:+.2f} points per doubling of the data, 95% CI"
    )
    centred = np.log2(sizes) - np.log2(sizes).mean()
    level = noise - np.outer(centred, centred @ noise / (centred @ centred))  # the noise with its slope taken out
    flat = gain_trend(sizes, [[offsets[seed] + level[i, seed] for seed in seeds] for i in range(len(sizes))], 0.95)
    assert flat.mean == pytest.approx(0, abs=1e-12) and "shows no detectable trend" in trend_sentence(
        "augmented", flat, 0.95
    )
    assert gain_trend([250], [gains[0]], 0.95) is None and "too few sizes" in trend_sentence("augmented", None, 0.95)
