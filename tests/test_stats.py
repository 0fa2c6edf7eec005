"""The verdict's statistics, checked against scipy on known inputs and at their edges."""

import numpy as np
import pytest
from scipy import stats

from tasks.stats import Estimate, holm, mcnemar_exact, mean_ci, paired_difference, verdict


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
    difference = paired_difference([0.7], [0.6], 0.95)
    assert difference.ci is None and difference.p_value is None
    sentence = verdict("augmented", difference, 1, 0.95)
    assert "no confidence interval" in sentence and "improves" not in sentence


def test_equal_runs_give_a_zero_width_interval():
    assert mean_ci([0.5, 0.5, 0.5], 0.95).ci == (0.5, 0.5)
    difference = paired_difference([0.6, 0.6], [0.6, 0.6], 0.95)
    assert difference.ci == (0.0, 0.0) and difference.p_value == 1.0
    assert "no detectable difference" in verdict("augmented", difference, 2, 0.95)


@pytest.mark.parametrize(
    ("ci", "expected"),
    [
        ((0.01, 0.09), "augmented improves test accuracy by 5.0 points"),
        ((0.0, 0.10), "no detectable difference"),  # touching 0 is not an improvement
        ((-0.02, 0.12), "no detectable difference"),
        ((-0.09, -0.01), "augmented hurts test accuracy by 5.0 points"),
    ],
)
def test_verdict_claims_a_change_only_when_the_interval_excludes_zero(ci, expected):
    mean = 0.05 if ci[0] >= -0.02 else -0.05
    assert expected in verdict("augmented", Estimate(mean, ci, 0.04), 3, 0.95)


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
    assert "improves" in verdict("augmented", difference, 3, 0.95, adjusted_p=0.03, comparisons=1)
    sentence = verdict("augmented", difference, 3, 0.95, adjusted_p=0.09, comparisons=3)
    assert "no detectable difference" in sentence and "Holm-adjusted p = 0.09 over 3 comparisons" in sentence
