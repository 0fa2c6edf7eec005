"""Stage `scaling` of study/dvc.yaml: the study's runs gathered into reports/scaling.json and reports/scaling.png."""

import json
from pathlib import Path

from tasks.common.arms import BASELINE, comparison_pairs
from tasks.common.errors import run_cli
from tasks.common.params import Params, load_params
from tasks.common.paths import SCALING, STUDY_RUNS_DIR
from tasks.common.results import HolmFamily, Scaling, SizeComparison, SizeScore, Trend, write_result
from tasks.common.stats import gain_trend, holm, mean_ci, paired_difference, tost, trend_sentence, verdict_kind
from tasks.evaluate.report import plot_scaling
from tasks.study.runs import check_baseline, run_name

HOLM_FAMILY = (
    "every comparison make run makes, at every size: one family for all the verdicts the study states, "
    "so it is larger than make run's and its adjusted p-values are larger for the same runs"
)
TREND_MODEL = (
    "least squares of the paired gain on log2(images per class), one intercept per seed (seeds as fixed effects)"
)


def compare(
    accuracy: dict, sizes: list[int], treated: str, control: str, confidence: float, margin: float, adjusted: dict
) -> list[SizeComparison]:
    """treated vs control at each size: the paired difference over seeds, its Holm-adjusted p-value, TOST and
    verdict."""
    points = []
    for size in sizes:
        difference = paired_difference(accuracy[size, treated], accuracy[size, control], confidence)
        equivalence = tost(accuracy[size, treated], accuracy[size, control], margin, 1 - confidence)
        points.append(
            SizeComparison(
                images_per_class=size,
                delta_mean=difference.mean,
                ci95=difference.ci,
                p_value=difference.p_value,
                p_value_holm=adjusted[treated, control, size],
                ci90=equivalence.ci,
                tost_p=equivalence.p_value,
                verdict_kind=verdict_kind(
                    difference, equivalence, confidence, margin, adjusted[treated, control, size]
                ),
            )
        )
    return points


def trend(accuracy: dict, sizes: list[int], treated: str, control: str, confidence: float) -> Trend:
    """The trend of treated's per-seed gain over control against log2(size), with its sentence."""
    per_seed = [[a - b for a, b in zip(accuracy[size, treated], accuracy[size, control])] for size in sizes]
    fit = gain_trend(sizes, per_seed, confidence)
    fitted = {} if fit is None else {"slope_per_doubling": fit.mean, "ci95": fit.ci, "p_value": fit.p_value}
    return Trend(**fitted, model=TREND_MODEL, sentence=trend_sentence(treated, fit, confidence, control))


def summarise(params: Params, runs_dir: Path = STUDY_RUNS_DIR, out: Path = SCALING) -> Scaling:
    """reports/scaling.json and reports/scaling.png.

    scaling.json holds, per arm and size, the mean test accuracy over seeds with its interval; each arm's paired
    gain over original (`gain_over_original`) and, under `isolating`, each comparison that isolates augmentation
    (augmented vs repeated: the same training steps, transformed or not; with the online arm, online vs augmented
    and vs repeated), each with its verdict; and the trend of each against log2(size) (`trend`, `isolating_trend`).

    The Holm family is every comparison `make run` makes (tasks/common/arms.py comparison_pairs), at every size: one
    family for all the verdicts the study states, so that picking the size (or the comparison) where a gain
    looks best is corrected for (`holm_family`). It is larger than `make run`'s, so the study's adjusted
    p-values are larger than `make run`'s for the same runs. Each trend is one test, not in the family.
    """
    confidence, seeds, sizes = params.evaluate.confidence, params.train.seeds, params.study.sizes
    accuracy = {}
    for size in sizes:
        for arm in params.train.arms:
            runs = [json.loads((runs_dir / f"{run_name(size, arm, seed)}.json").read_text()) for seed in seeds]
            accuracy[size, arm] = [run["test_accuracy"] for run in runs]
    arms = {}
    for arm in params.train.arms:
        arms[arm] = []
        for size in sizes:
            estimate = mean_ci(accuracy[size, arm], confidence)
            arms[arm].append(
                SizeScore(images_per_class=size, mean=estimate.mean, ci95=estimate.ci, runs=accuracy[size, arm])
            )
    margin = params.evaluate.equivalence_margin / 100
    pairs = comparison_pairs(params.train.arms)  # {arm: (arm, original)} and {"<treated>-vs-<control>": the pair}
    family = [(*pair, size) for pair in pairs.values() for size in sizes]
    p_values = [
        paired_difference(accuracy[size, treated], accuracy[size, control], confidence).p_value
        for treated, control, size in family
    ]
    adjusted = dict(zip(family, holm(p_values)))
    gains, trends, isolating, isolating_trends = {}, {}, {}, {}
    for key, (treated, control) in pairs.items():
        points = compare(accuracy, sizes, treated, control, confidence, margin, adjusted)
        fitted = trend(accuracy, sizes, treated, control, confidence)
        if control == BASELINE:
            gains[treated], trends[treated] = points, fitted
        else:
            isolating[key], isolating_trends[key] = points, fitted
    scaling = Scaling(
        confidence=confidence,
        equivalence_margin=margin,
        seeds=seeds,
        sizes=sizes,
        test_accuracy=arms,
        gain_over_original=gains,
        trend=trends,
        isolating=isolating,
        isolating_trend=isolating_trends,
        holm_family=HolmFamily(
            comparisons=len(family),
            members=[f"{treated} vs {control}" for treated, control in pairs.values()],
            sizes=sizes,
            why=HOLM_FAMILY,
        ),
    )
    write_result(out, scaling)
    plot_scaling(scaling, out.with_suffix(".png"))
    print("\n".join(fitted.sentence for fitted in [*trends.values(), *isolating_trends.values()]))
    return scaling


def main() -> None:
    params = load_params()
    check_baseline(params)
    summarise(params)


if __name__ == "__main__":
    run_cli(main)
