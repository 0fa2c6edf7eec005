"""The scaling study's summary on known run files: augmented vs repeated at each size, its trend, one Holm family."""

import json

import numpy as np
import pytest
from scipy import stats
from statsmodels.stats.multitest import multipletests

from tasks.common.params import Params
from tasks.common.results import Scaling, read_result
from tasks.study.runs import run_name
from tasks.study.summary import summarise

SIZES, SEEDS = [25, 50, 100], [0, 1, 2]
ORIGINAL = {25: [0.70, 0.68, 0.72], 50: [0.74, 0.71, 0.73], 100: [0.78, 0.80, 0.77]}
REPEATED_GAIN = {25: [0.08, 0.06, 0.07], 50: [0.05, 0.06, 0.03], 100: [0.02, 0.01, 0.03]}
# augmented - repeated: about -3 points at 25, -1 at 50, +3 at 100: a gain that grows about 3 points per doubling.
ISOLATED = {25: [-0.031, -0.028, -0.033], 50: [-0.012, -0.009, -0.008], 100: [0.030, 0.032, 0.028]}


def accuracy(size: int, arm: str) -> list[float]:
    repeated = [o + g for o, g in zip(ORIGINAL[size], REPEATED_GAIN[size])]
    return {
        "original": ORIGINAL[size],
        "repeated": repeated,
        "augmented": [r + d for r, d in zip(repeated, ISOLATED[size])],
    }[arm]


def study(tmp_path, arms: list[str]) -> Scaling:
    runs = tmp_path / "runs"
    for size in SIZES:
        for arm in arms:
            for seed, value in zip(SEEDS, accuracy(size, arm)):
                run = {
                    "size": size,
                    "arm": arm,
                    "seed": seed,
                    "train_images": 2 * size,
                    "test_accuracy": value,
                    "val_accuracy": value,
                }
                (runs / f"{run_name(size, arm, seed)}.json").parent.mkdir(exist_ok=True)
                (runs / f"{run_name(size, arm, seed)}.json").write_text(json.dumps(run))
    params = Params.model_validate({"train": {"arms": arms, "seeds": SEEDS}, "study": {"sizes": SIZES}})
    return summarise(params, runs, tmp_path / "scaling.json")


def test_augmented_vs_repeated_at_each_size_with_its_trend_in_one_holm_family(tmp_path, capsys):
    scaling = study(tmp_path, ["original", "augmented", "repeated"])
    assert read_result(tmp_path / "scaling.json", Scaling) == scaling
    assert (tmp_path / "scaling.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert set(scaling.gain_over_original) == set(scaling.trend) == {"augmented", "repeated"}  # as before
    [points] = scaling.isolating.values()
    assert list(scaling.isolating) == ["augmented-vs-repeated"]
    for size, point in zip(SIZES, points):
        treated, control = accuracy(size, "augmented"), accuracy(size, "repeated")
        test = stats.ttest_rel(treated, control)
        assert point.images_per_class == size
        assert point.delta_mean == pytest.approx(np.mean(ISOLATED[size])) and point.p_value == pytest.approx(
            test.pvalue
        )
        assert point.ci95 == pytest.approx(list(test.confidence_interval(0.95)))
    # One family: every comparison make run makes (two against original, augmented vs repeated), at every size.
    every = [*(p for arm in ("augmented", "repeated") for p in scaling.gain_over_original[arm]), *points]
    assert scaling.holm_family.comparisons == len(every) == 9
    expected = multipletests([point.p_value for point in every], method="holm")[1]
    assert [point.p_value_holm for point in every] == pytest.approx(expected.tolist())
    assert [point.verdict_kind for point in points] == ["hurts", "inconclusive", "improves"]
    assert points[1].p_value < 0.05 < points[1].p_value_holm  # -1 point at 50: "hurts" alone, not in the family
    # The trend: least squares of the per-seed differences on log2(size), one intercept per seed.
    fitted = scaling.isolating_trend["augmented-vs-repeated"]
    design = np.column_stack(
        [np.repeat(np.log2(SIZES), 3), *(np.tile(np.arange(3) == seed, 3) for seed in SEEDS)]
    ).astype(float)
    slope = np.linalg.lstsq(design, np.concatenate([ISOLATED[size] for size in SIZES]), rcond=None)[0][0]
    assert fitted.slope_per_doubling == pytest.approx(slope) and fitted.ci95[0] > 0
    assert fitted.sentence.startswith("augmented vs repeated: the gain grows as data grows (+3.03 points per doubling")
    assert fitted.sentence in capsys.readouterr().out


def test_without_repeated_nothing_isolates_and_the_family_is_the_gains(tmp_path):
    scaling = study(tmp_path, ["original", "augmented"])
    assert scaling.isolating == {} and scaling.isolating_trend == {}
    gains = scaling.gain_over_original["augmented"]
    assert scaling.holm_family.comparisons == len(gains) == 3
    assert [point.p_value_holm for point in gains] == pytest.approx(
        multipletests([p.p_value for p in gains], method="holm")[1].tolist()
    )
