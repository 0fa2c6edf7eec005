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
from tasks.evaluate import predict
from tasks.files import read_csv, write_text_atomic
from tasks.ingest import ingest, is_fashion_mnist
from tasks.params import Params, load_params
from tasks.report import SCALING, chosen_epoch, plot_scaling
from tasks.stats import gain_trend, holm, mean_ci, paired_difference, tost, trend_sentence, verdict_kind

RUNS_DIR = Path("study/runs")
BASELINE = "original"  # every arm's gain per size is measured against it
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


def summarise(params: Params, runs_dir: Path = RUNS_DIR, out: Path = SCALING) -> dict:
    """reports/scaling.json (per arm and size: mean test accuracy over seeds with its interval; each arm's
    paired gain over original with its verdict, Holm-corrected over every arm and size; per arm, the gain's
    trend against log2(size)) and reports/scaling.png (both against size, the gains with the equivalence band)."""
    confidence, seeds = params.evaluate.confidence, params.train.seeds
    accuracy = {}
    for size in params.study.sizes:
        for arm in params.train.arms:
            runs = [json.loads((runs_dir / f"{run_name(size, arm, seed)}.json").read_text()) for seed in seeds]
            accuracy[size, arm] = [run["test_accuracy"] for run in runs]
    arms = {}
    for arm in params.train.arms:
        arms[arm] = []
        for size in params.study.sizes:
            estimate = mean_ci(accuracy[size, arm], confidence)
            arms[arm].append({"images_per_class": size, "mean": estimate.mean, "ci95": estimate.ci, "runs": accuracy[size, arm]})
    margin = params.evaluate.equivalence_margin / 100
    pairs = [(arm, size) for arm in params.train.arms if arm != BASELINE for size in params.study.sizes]
    differences = {pair: paired_difference(accuracy[pair[1], pair[0]], accuracy[pair[1], BASELINE], confidence) for pair in pairs}
    adjusted = dict(zip(pairs, holm([difference.p_value for difference in differences.values()])))
    gains, trends = {}, {}
    for arm, size in pairs:
        difference, equivalence = differences[arm, size], tost(accuracy[size, arm], accuracy[size, BASELINE], margin, 1 - confidence)
        gains.setdefault(arm, []).append({
            "images_per_class": size, "delta_mean": difference.mean, "ci95": difference.ci, "p_value": difference.p_value,
            "p_value_holm": adjusted[arm, size], "ci90": equivalence.ci, "tost_p": equivalence.p_value,
            "verdict_kind": verdict_kind(difference, equivalence, confidence, margin, adjusted[arm, size]),
        })  # fmt: skip
    for arm in gains:
        per_seed = [[treated - base for treated, base in zip(accuracy[size, arm], accuracy[size, BASELINE])] for size in params.study.sizes]
        trend = gain_trend(params.study.sizes, per_seed, confidence)
        fitted = {} if trend is None else {"slope_per_doubling": trend.mean, "ci95": trend.ci, "p_value": trend.p_value}
        trends[arm] = fitted | {"model": TREND_MODEL, "sentence": trend_sentence(arm, trend, confidence)}
    scaling = {
        "confidence": confidence, "equivalence_margin": margin, "seeds": seeds, "sizes": params.study.sizes, "test_accuracy": arms,
        "gain_over_original": gains, "trend": trends,
    }  # fmt: skip
    write_text_atomic(out, json.dumps(scaling, indent=2) + "\n")
    plot_scaling(scaling, out.with_suffix(".png"))
    print("\n".join(trend["sentence"] for trend in trends.values()))
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
