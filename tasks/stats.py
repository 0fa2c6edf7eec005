"""The statistics behind the verdict: t-intervals over seeds, paired tests between arms, Holm's correction.

Seeds are the unit of replication: each seed trains one model per arm on the
same data, so arms are compared seed by seed (paired), never run against run.
"""

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats
from statsmodels.stats.contingency_tables import mcnemar
from statsmodels.stats.multitest import multipletests


@dataclass(frozen=True)
class Estimate:
    mean: float
    ci: tuple[float, float] | None  # None when there are too few runs for an interval
    p_value: float | None = None


def mean_ci(values: list[float], confidence: float) -> Estimate:
    """Mean of the runs with its two-sided t confidence interval (None for a single run)."""
    data = np.asarray(values, dtype=float)
    mean = float(data.mean())
    if len(data) < 2:
        return Estimate(mean, None)
    spread = stats.sem(data)
    if spread == 0:  # every run equal: the interval is the point
        return Estimate(mean, (mean, mean))
    low, high = stats.t.interval(confidence, len(data) - 1, loc=mean, scale=spread)
    return Estimate(mean, (float(low), float(high)))


def paired_difference(treated: list[float], baseline: list[float], confidence: float) -> Estimate:
    """Mean of treated - baseline over paired runs, its t interval and the paired t-test's p-value."""
    differences = np.asarray(treated, dtype=float) - np.asarray(baseline, dtype=float)
    estimate = mean_ci(differences.tolist(), confidence)
    if len(differences) < 2:
        return estimate
    p_value = float(stats.ttest_rel(treated, baseline).pvalue)
    if math.isnan(p_value):  # identical differences: the test is undefined
        p_value = 1.0 if estimate.mean == 0 else 0.0
    return Estimate(estimate.mean, estimate.ci, p_value)


def mcnemar_exact(treated_correct: np.ndarray, baseline_correct: np.ndarray) -> dict:
    """Exact McNemar test on paired per-image outcomes: only the images the two disagree on count."""
    treated_only = int(np.sum(treated_correct & ~baseline_correct))
    baseline_only = int(np.sum(~treated_correct & baseline_correct))
    p_value = mcnemar([[0, treated_only], [baseline_only, 0]], exact=True).pvalue
    return {"treated_only_correct": treated_only, "baseline_only_correct": baseline_only, "p_value": float(p_value)}


def holm(p_values: list[float | None]) -> list[float | None]:
    """Holm's step-down adjustment of a family of p-values; missing ones (one seed) stay missing."""
    present = [p for p in p_values if p is not None]
    adjusted = iter(multipletests(present, method="holm")[1].tolist() if present else [])
    return [None if p is None else next(adjusted) for p in p_values]


def verdict(
    arm: str, difference: Estimate, runs: int, confidence: float, baseline: str = "original",
    adjusted_p: float | None = None, comparisons: int = 1,
) -> str:  # fmt: skip
    """One sentence that claims a change only when the interval excludes zero and, with several
    comparisons, the Holm-adjusted p-value stays under 1 - confidence."""
    points = 100 * difference.mean
    level = f"{100 * confidence:g}%"
    if difference.ci is None:
        return (
            f"{arm} vs {baseline}: {points:+.1f} points from a single seed; no confidence interval "
            "can be given from one run, so no verdict. Add seeds to train.seeds."
        )
    low, high = (100 * bound for bound in difference.ci)
    p_value = difference.p_value if adjusted_p is None else adjusted_p
    tested = f"p = {p_value:.3g}" if comparisons == 1 else f"Holm-adjusted p = {p_value:.3g} over {comparisons} comparisons"
    interval = f"{level} CI {low:+.1f} to {high:+.1f}, {tested}, {runs} seeds"
    if p_value < 1 - confidence and low > 0:
        return f"{arm} improves test accuracy by {points:.1f} points over {baseline} ({interval})."
    if p_value < 1 - confidence and high < 0:
        return f"{arm} hurts test accuracy by {-points:.1f} points against {baseline} ({interval})."
    reason = "the interval includes 0" if low <= 0 <= high else "not significant after the correction"
    return f"{arm} vs {baseline}: no detectable difference ({points:+.1f} points, {interval}: {reason})."
