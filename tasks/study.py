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
from tasks.data import split_files
from tasks.errors import UserError, run_cli
from tasks.evaluate import BASELINE, predict
from tasks.files import read_csv, write_text_atomic
from tasks.ingest import ingest, is_fashion_mnist
from tasks.params import Params, load_params
from tasks.report import plot_scaling, validation_curve
from tasks.stats import mean_ci, paired_difference
from tasks.train import train

RUNS_DIR = Path("study/runs")
SCALING = Path("reports/scaling.json")


def run_name(size: int, arm: str, seed: int) -> str:
    return f"{size}-{arm}-{seed}"


def study_run(size: int, arm: str, seed: int, params: Params, runs_dir: Path = RUNS_DIR) -> dict:
    """Train one (size, arm, seed) model from scratch data and write its test and validation accuracy."""
    if not is_fashion_mnist(Path(params.ingest.source)):
        raise UserError("The scaling study subsamples Fashion-MNIST's training images: set ingest.source to its folder.")
    with tempfile.TemporaryDirectory(prefix="augflow-study-") as scratch:
        work = Path(scratch)
        subset = params.ingest.model_copy(update={"train_per_class": size})
        ingest(subset, work / "raw", work / "sets", work / "ingest_report.json", seeds=[seed])
        if arm == "repeated":  # no copies to make: the originals, listed 1 + copies times
            write_repeated_set(read_csv(work / f"sets/original/seed-{seed}.csv"), params.augment, work / f"sets/repeated/seed-{seed}.csv")
        elif arm != BASELINE:
            augment(params.augment, work / "sets/original", work / "augmented", work / "sets/augmented", preview=None)
        model = train(arm, seed, params.train, work / "sets", work / "raw/val", work / "models", work / "live", work / "times")
        paths, names = split_files(work / "raw/test")
        classes = sorted(set(names))
        predicted, _ = predict(model, paths, names, classes, params.evaluate.batch_size)
        result = {
            "size": size, "arm": arm, "seed": seed,
            "train_images": len(read_csv(work / f"sets/original/seed-{seed}.csv")),
            "test_accuracy": float(np.mean(predicted == np.array([classes.index(name) for name in names]))),
            "val_accuracy": validation_curve(work / "live", arm, seed)[-1][1],
        }  # fmt: skip
    write_text_atomic(runs_dir / f"{run_name(size, arm, seed)}.json", json.dumps(result, indent=2) + "\n")
    return result


def summarise(params: Params, runs_dir: Path = RUNS_DIR, out: Path = SCALING) -> dict:
    """reports/scaling.json (per arm and size: mean test accuracy over seeds with its interval; each arm's
    paired gain over original) and reports/scaling.png (both against size)."""
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
    gains = {}
    for arm in params.train.arms:
        if arm != BASELINE:
            gains[arm] = []
            for size in params.study.sizes:
                difference = paired_difference(accuracy[size, arm], accuracy[size, BASELINE], confidence)
                gains[arm].append({"images_per_class": size, "delta_mean": difference.mean, "ci95": difference.ci, "p_value": difference.p_value})
    scaling = {"confidence": confidence, "seeds": seeds, "sizes": params.study.sizes, "test_accuracy": arms, "gain_over_original": gains}
    write_text_atomic(out, json.dumps(scaling, indent=2) + "\n")
    plot_scaling(scaling, out.with_suffix(".png"))
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
    if args.summarise:
        summarise(params)
    else:
        study_run(args.size, args.arm, args.seed, params)


if __name__ == "__main__":
    run_cli(main)
