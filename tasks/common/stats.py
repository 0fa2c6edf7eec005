"""The statistics behind the verdict: t-intervals over seeds, paired tests between arms, Holm's correction,
equivalence by two one-sided tests, the seeds an undecided comparison would need, and the trend of a gain
with the size of the training set.

Seeds are the unit of replication: each seed trains one model per arm on the
same data, so arms are compared seed by seed (paired), never run against run.
Differences are fractions of accuracy throughout (0.01 is one point).
"""

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

# statsmodels is imported in the three functions that use it: it takes about a second to import, and the
# processes that read this module only for the report's wording (every Prefect flow run) need none of it.


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
    if stats.sem(differences) == 0:  # identical differences: no spread to test, the mean alone decides
        return Estimate(estimate.mean, estimate.ci, 1.0 if estimate.mean == 0 else 0.0)
    return Estimate(estimate.mean, estimate.ci, float(stats.ttest_rel(treated, baseline).pvalue))


def mcnemar_exact(treated_correct: np.ndarray, baseline_correct: np.ndarray) -> dict:
    """Exact McNemar test on paired per-image outcomes: only the images the two disagree on count."""
    treated_only = int(np.sum(treated_correct & ~baseline_correct))
    baseline_only = int(np.sum(~treated_correct & baseline_correct))
    from statsmodels.stats.contingency_tables import mcnemar

    p_value = mcnemar([[0, treated_only], [baseline_only, 0]], exact=True).pvalue
    return {"treated_only_correct": treated_only, "baseline_only_correct": baseline_only, "p_value": float(p_value)}


def holm(p_values: list[float | None]) -> list[float | None]:
    """Holm's step-down adjustment of a family of p-values; missing ones (one seed) stay missing."""
    from statsmodels.stats.multitest import multipletests

    present = [p for p in p_values if p is not None]
    adjusted = iter(multipletests(present, method="holm")[1].tolist() if present else [])
    return [None if p is None else next(adjusted) for p in p_values]


def levels(confidence: float) -> tuple[str, str]:
    """The t-intervals' level and the equivalence intervals' (two one-sided tests at 1 - confidence each), as text."""
    return f"{100 * confidence:g}%", f"{100 * (2 * confidence - 1):g}%"


def tost(treated: list[float], baseline: list[float], margin: float, alpha: float) -> Estimate:
    """Two one-sided t-tests that the mean paired difference lies inside (-margin, +margin).

    Returns the mean, its 1 - 2 alpha t-interval and the TOST p-value (the larger one-sided p).
    p < alpha exactly when that interval lies strictly inside the margins, as with statsmodels'
    ttost_paired. Equal differences have no spread to test: the mean alone decides (p 0 inside,
    1 on or outside the margins). One seed gives no interval and no p-value.
    """
    differences = np.asarray(treated, dtype=float) - np.asarray(baseline, dtype=float)
    estimate = mean_ci(differences.tolist(), 1 - 2 * alpha)
    if estimate.ci is None:
        return estimate
    spread = stats.sem(differences)
    if spread == 0:
        return Estimate(estimate.mean, estimate.ci, 0.0 if abs(estimate.mean) < margin else 1.0)
    degrees = len(differences) - 1
    above_low = stats.t.sf((estimate.mean + margin) / spread, degrees)  # H0: difference <= -margin
    below_high = stats.t.cdf((estimate.mean - margin) / spread, degrees)  # H0: difference >= +margin
    return Estimate(estimate.mean, estimate.ci, float(max(above_low, below_high)))


def verdict_kind(
    difference: Estimate, equivalence: Estimate, confidence: float, margin: float, adjusted_p: float | None = None
) -> str:
    """improves | hurts | equivalent | inconclusive.

    improves and hurts keep their rule: the interval excludes 0 and the (Holm-adjusted) p-value is
    under 1 - confidence; they take precedence. equivalent: the equivalence interval (from tost)
    lies strictly inside ±margin, so an interval touching a margin is not equivalent. One seed
    gives no interval, hence inconclusive.
    """
    if difference.ci is None:
        return "inconclusive"
    p_value = difference.p_value if adjusted_p is None else adjusted_p
    low, high = difference.ci
    if p_value < 1 - confidence and low > 0:
        return "improves"
    if p_value < 1 - confidence and high < 0:
        return "hurts"
    if -margin < equivalence.ci[0] and equivalence.ci[1] < margin:
        return "equivalent"
    return "inconclusive"


def seeds_needed(
    treated: list[float], baseline: list[float], confidence: float, margin: float, comparisons: int = 1
) -> int | None:
    """The fewest seeds at which, were the mean and standard deviation of the paired differences
    (treated - baseline) what these seeds show, the comparison would be decided: its interval would exclude 0 at level
    1 - (1 - confidence) / comparisons (enough for Holm's correction whatever the other comparisons
    give), or its 1 - 2 (1 - confidence) interval would fit inside ±margin.

    None from one seed or from equal differences (no spread to extrapolate). Otherwise there is
    always an answer for margin > 0: a mean of 0 eventually fits inside the margins, any other mean
    is eventually told from 0. Both half-widths shrink as seeds are added, so the first deciding
    count is found by doubling, then bisection.
    """
    data = np.asarray(treated, dtype=float) - np.asarray(baseline, dtype=float)
    if len(data) < 2 or data.std(ddof=1) == 0:
        return None
    mean, deviation = abs(float(data.mean())), float(data.std(ddof=1))
    alpha = 1 - confidence

    def decides(seeds: int) -> bool:
        half_width = deviation / math.sqrt(seeds)
        excludes_zero = stats.t.ppf(1 - alpha / (2 * comparisons), seeds - 1) * half_width < mean
        fits_inside = stats.t.ppf(1 - alpha, seeds - 1) * half_width < margin - mean
        return bool(excludes_zero or fits_inside)

    low, high = 1, 2
    while not decides(high):
        low, high = high, 2 * high
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (low, middle) if decides(middle) else (middle, high)
    return high


def verdict(
    arm: str,
    difference: Estimate,
    equivalence: Estimate,
    runs: int,
    confidence: float,
    margin: float,
    baseline: str = "original",
    adjusted_p: float | None = None,
    comparisons: int = 1,
    needed: int | None = None,
) -> str:
    """The verdict in words, naming the test that decided it: the paired t-test (improves, hurts),
    the two one-sided tests (equivalent), or neither (inconclusive, with the seeds it would need)."""
    points, bound = 100 * difference.mean, f"±{100 * margin:.1f} points"
    if difference.ci is None:
        return (
            f"{arm} vs {baseline}: inconclusive, {points:+.1f} points from a single seed; no confidence interval "
            "can be given from one run, so neither test can decide. Add seeds to train.seeds."
        )
    level, equivalence_level = levels(confidence)
    low, high = (100 * end for end in difference.ci)
    p_value = difference.p_value if adjusted_p is None else adjusted_p
    tested = (
        f"p = {p_value:.3g}" if comparisons == 1 else f"Holm-adjusted p = {p_value:.3g} over {comparisons} comparisons"
    )
    t_test = f"{level} CI {low:+.1f} to {high:+.1f}, {tested}, {runs} seeds"
    equivalence_low, equivalence_high = (100 * end for end in equivalence.ci)
    two_one_sided = (
        f"{equivalence_level} CI {equivalence_low:+.1f} to {equivalence_high:+.1f}, TOST p = {equivalence.p_value:.3g}"
    )
    kind = verdict_kind(difference, equivalence, confidence, margin, adjusted_p)
    if kind == "improves":
        return (
            f"{arm} improves test accuracy by {points:.1f} points over {baseline} "
            f"({t_test}; decided by the paired t-test)."
        )
    if kind == "hurts":
        return (
            f"{arm} hurts test accuracy by {-points:.1f} points against {baseline} "
            f"({t_test}; decided by the paired t-test)."
        )
    if kind == "equivalent":
        return (
            f"{arm} vs {baseline}: equivalent within {bound} ({points:+.1f} points, {two_one_sided}, {runs} seeds: "
            f"the interval lies inside {bound}; decided by two one-sided tests at {100 * (1 - confidence):g}%)."
        )
    reason = "the interval includes 0" if low <= 0 <= high else "not significant after the correction"
    estimate = (
        ""
        if needed is None
        else f" About {needed} seeds would decide it at the spread seen (an estimate from {runs} seeds)."
    )
    return (
        f"{arm} vs {baseline}: inconclusive ({points:+.1f} points). Paired t-test: no detectable difference "
        f"({t_test}: {reason}). Two one-sided tests: not shown equivalent within {bound} ({two_one_sided}).{estimate}"
    )


def gain_trend(sizes: list[int], gains: list[list[float]], confidence: float) -> Estimate | None:
    """The slope of the paired gain against log2(images per class): the change per doubling of the data,
    its t-interval and p-value. gains[i][j] is seed j's gain at sizes[i].

    A seed's gains at different sizes are not independent (its subsets are nested, its initialisation
    shared), so each seed has its own intercept, a fixed effect, and the slope is estimated within
    seeds: ordinary least squares of gain on log2(size) and one indicator per seed. A random effect
    would need the variance between seeds estimated from a handful of them; fixed effects do not.
    None with one size (no slope); no interval when no residual degrees of freedom are left.
    """
    if len(sizes) < 2:
        return None
    seeds = len(gains[0])
    doublings = np.repeat(np.log2(sizes), seeds)
    seed_indicators = [np.tile(np.arange(seeds) == seed, len(sizes)) for seed in range(seeds)]
    from statsmodels.regression.linear_model import OLS

    fit = OLS(np.concatenate(gains), np.column_stack([doublings, *seed_indicators]).astype(float)).fit()
    if fit.df_resid < 1:
        return Estimate(float(fit.params[0]), None)
    low, high = fit.conf_int(1 - confidence)[0]
    return Estimate(float(fit.params[0]), (float(low), float(high)), float(fit.pvalues[0]))


def trend_sentence(arm: str, trend: Estimate | None, confidence: float, baseline: str = "original") -> str:
    """Whether the gain shrinks, grows or shows no detectable trend as data grows: a direction is claimed
    only when the slope's interval excludes 0 (and so its p-value is under 1 - confidence)."""
    if trend is None or trend.ci is None:
        return f"{arm} vs {baseline}: too few sizes or seeds to fit a trend of the gain against data size."
    low, high = (100 * end for end in trend.ci)
    fitted = (
        f"{100 * trend.mean:+.2f} points per doubling of the data, "
        f"{levels(confidence)[0]} CI {low:+.2f} to {high:+.2f}, p = {trend.p_value:.3g}; seeds as fixed effects"
    )
    direction = "shrinks" if high < 0 else "grows" if low > 0 else "shows no detectable trend"
    return f"{arm} vs {baseline}: the gain {direction} as data grows ({fitted})."
