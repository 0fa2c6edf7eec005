"""The scaling study (`make study`): test accuracy against training-set size, per arm, with CI bands.

Its stages live in study/dvc.yaml, a DVC project of its own inside this one (a
subrepo), so the main pipeline's `dvc repro`, `dvc status` and Prefect flow never
see them. One stage per (size, arm, seed) rebuilds that run's data in a scratch
folder with the main pipeline's own code: ingest with `size` images per class
for the seed (the first `size` of the seed's own order, so a seed's subsets are
nested: its 50 images hold its 25), augment, train; it scores the model once on
the fixed test split and keeps only the scores, study/runs/<size>-<arm>-<seed>.json.
`--summarise` gathers them into reports/scaling.json and reports/scaling.png.
"""

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np

from tasks.augment import augment, write_repeated_set
from tasks.errors import UserError, run_cli
from tasks.evaluate import comparison_pairs, predict
from tasks.files import read_csv, write_text_atomic
from tasks.ingest import ingest, is_fashion_mnist
from tasks.params import Params, load_params
from tasks.report import SCALING, chosen_epoch, plot_scaling
from tasks.stats import gain_trend, holm, mean_ci, paired_difference, tost, trend_sentence, verdict_kind

RUNS_DIR = Path("study/runs")
BASELINE = "original"  # every arm's gain per size is measured against it
HOLM_FAMILY = (
    "every comparison make run makes, at every size: one family for all the verdicts the study states, "
    "so it is larger than make run's and its adjusted p-values are larger for the same runs"
)
TREND_MODEL = "least squares of the paired gain on log2(images per class), one intercept per seed (seeds as fixed effects)"


def run_name(size: int, arm: str, seed: int) -> str:
    return f"{size}-{arm}-{seed}"


def study_run(size: int, arm: str, seed: int, params: Params, runs_dir: Path = RUNS_DIR) -> dict:
    """Train one (size, arm, seed) model from scratch data and write its test and validation accuracy."""
    # TensorFlow and Keras come with these, where a run needs them: `--summarise` starts in a second without them.
    from tasks.data import split_files
    from tasks.train import train

    if not is_fashion_mnist(Path(params.ingest.source)):
        raise UserError("The scaling study subsamples Fashion-MNIST's training images: set ingest.source to its folder.")
    with tempfile.TemporaryDirectory(prefix="augflow-study-") as scratch:
        work = Path(scratch)
        subset = params.ingest.model_copy(update={"train_per_class": size})
        ingest(subset, work / "raw", work / "sets", work / "ingest_report.json", seeds=[seed])
        if arm == "repeated":  # no copies to make: the originals, listed 1 + copies times
            write_repeated_set(read_csv(work / f"sets/original/seed-{seed}.csv"), params.augment, work / f"sets/repeated/seed-{seed}.csv")
        elif arm != "original":  # the originals need no copies either
            augment(params.augment, work / "sets/original", work / "augmented", work / "sets/augmented", preview=None)
        # The run's data is rebuilt here each time, so a killed run has nothing to resume from: its resume state
        # stays in the scratch folder and goes with it.
        model = train(arm, seed, params.train, work / "sets", work / "raw/val", work / "models", work / "live", work / "times", work / "resume")
        paths, names = split_files(work / "raw/test")
        classes = sorted(set(names))
        predicted, _ = predict(model, paths, names, classes, params.evaluate.batch_size)
        result = {
            "size": size, "arm": arm, "seed": seed,
            "train_images": len(read_csv(work / f"sets/original/seed-{seed}.csv")),
            "test_accuracy": float(np.mean(predicted == np.array([classes.index(name) for name in names]))),
            "val_accuracy": chosen_epoch(work / "live", arm, seed)[1],
        }  # fmt: skip
    write_text_atomic(runs_dir / f"{run_name(size, arm, seed)}.json", json.dumps(result, indent=2) + "\n")
    return result


def compare(accuracy: dict, sizes: list[int], treated: str, control: str, confidence: float, margin: float, adjusted: dict) -> list[dict]:
    """treated vs control at each size: the paired difference over seeds, its Holm-adjusted p-value, TOST and verdict."""
    points = []
    for size in sizes:
        difference = paired_difference(accuracy[size, treated], accuracy[size, control], confidence)
        equivalence = tost(accuracy[size, treated], accuracy[size, control], margin, 1 - confidence)
        points.append({
            "images_per_class": size, "delta_mean": difference.mean, "ci95": difference.ci, "p_value": difference.p_value,
            "p_value_holm": adjusted[treated, control, size], "ci90": equivalence.ci, "tost_p": equivalence.p_value,
            "verdict_kind": verdict_kind(difference, equivalence, confidence, margin, adjusted[treated, control, size]),
        })  # fmt: skip
    return points


def trend(accuracy: dict, sizes: list[int], treated: str, control: str, confidence: float) -> dict:
    """The trend of treated's per-seed gain over control against log2(size), with its sentence."""
    per_seed = [[a - b for a, b in zip(accuracy[size, treated], accuracy[size, control])] for size in sizes]
    fit = gain_trend(sizes, per_seed, confidence)
    fitted = {} if fit is None else {"slope_per_doubling": fit.mean, "ci95": fit.ci, "p_value": fit.p_value}
    return fitted | {"model": TREND_MODEL, "sentence": trend_sentence(treated, fit, confidence, control)}


def summarise(params: Params, runs_dir: Path = RUNS_DIR, out: Path = SCALING) -> dict:
    """reports/scaling.json and reports/scaling.png.

    scaling.json holds, per arm and size, the mean test accuracy over seeds with its interval; each arm's paired
    gain over original (`gain_over_original`) and, under `isolating`, each comparison that isolates augmentation
    (augmented vs repeated: the same training steps, transformed or not; with the online arm, online vs augmented
    and vs repeated), each with its verdict; and the trend of each against log2(size) (`trend`, `isolating_trend`).

    The Holm family is every comparison `make run` makes (tasks/evaluate.py comparison_pairs), at every size: one
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
            arms[arm].append({"images_per_class": size, "mean": estimate.mean, "ci95": estimate.ci, "runs": accuracy[size, arm]})
    margin = params.evaluate.equivalence_margin / 100
    pairs = comparison_pairs(params.train.arms)  # {arm: (arm, original)} and {"<treated>-vs-<control>": the pair}
    family = [(*pair, size) for pair in pairs.values() for size in sizes]
    p_values = [paired_difference(accuracy[size, treated], accuracy[size, control], confidence).p_value for treated, control, size in family]
    adjusted = dict(zip(family, holm(p_values)))
    gains, trends, isolating, isolating_trends = {}, {}, {}, {}
    for key, (treated, control) in pairs.items():
        points = compare(accuracy, sizes, treated, control, confidence, margin, adjusted)
        fitted = trend(accuracy, sizes, treated, control, confidence)
        if control == BASELINE:
            gains[treated], trends[treated] = points, fitted
        else:
            isolating[key], isolating_trends[key] = points, fitted
    scaling = {
        "confidence": confidence, "equivalence_margin": margin, "seeds": seeds, "sizes": sizes, "test_accuracy": arms,
        "gain_over_original": gains, "trend": trends, "isolating": isolating, "isolating_trend": isolating_trends,
        "holm_family": {"comparisons": len(family), "members": [f"{treated} vs {control}" for treated, control in pairs.values()],
                        "sizes": sizes, "why": HOLM_FAMILY},
    }  # fmt: skip
    write_text_atomic(out, json.dumps(scaling, indent=2) + "\n")
    plot_scaling(scaling, out.with_suffix(".png"))
    print("\n".join(fitted["sentence"] for fitted in [*trends.values(), *isolating_trends.values()]))
    return scaling


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int)
    parser.add_argument("--arm")
    parser.add_argument("--seed", type=int)
    parser.add_argument("--summarise", action="store_true", help="gather the runs into reports/scaling.json and .png")
    args = parser.parse_args()
    if not args.summarise and None in (args.size, args.arm, args.seed):
        parser.error("give --size, --arm and --seed for one run, or --summarise")
    params = load_params()
    if BASELINE not in params.train.arms:
        raise UserError(f"The scaling study measures each arm's gain over {BASELINE}: add {BASELINE} to train.arms in params.yaml.")
    if args.summarise:
        summarise(params)
    else:
        study_run(args.size, args.arm, args.seed, params)


if __name__ == "__main__":
    run_cli(main)
