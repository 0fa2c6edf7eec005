"""Stage `run` of study/dvc.yaml: one (training images per class, arm, seed) model, trained from scratch data.

It rebuilds that run's data in a scratch folder with the main pipeline's own code: ingest with `size`
images per class for the seed (the first `size` of the seed's own order, so a seed's subsets are nested:
its 50 images hold its 25), augment, train; it scores the model once on the fixed test split and keeps
only the scores, study/runs/<size>-<arm>-<seed>.json.
"""

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np

from tasks.augment.stage import augment
from tasks.common.arms import arm_named
from tasks.common.curves import chosen_epoch
from tasks.common.data import split_examples
from tasks.common.errors import UserError, run_cli
from tasks.common.files import read_csv, write_text_atomic
from tasks.common.params import Params, load_params
from tasks.common.paths import STUDY_RUNS_DIR
from tasks.evaluate.predict import predict
from tasks.ingest.stage import ingest, is_fashion_mnist
from tasks.study.runs import check_baseline, run_name
from tasks.train.stage import train


def study_run(size: int, arm: str, seed: int, params: Params, runs_dir: Path = STUDY_RUNS_DIR) -> dict:
    """Train one (size, arm, seed) model from scratch data and write its test and validation accuracy."""
    if not is_fashion_mnist(Path(params.ingest.source)):
        raise UserError(
            "The scaling study subsamples Fashion-MNIST's training images: set ingest.source to its folder."
        )
    with tempfile.TemporaryDirectory(prefix="augflow-study-") as scratch:
        work = Path(scratch)
        subset = params.ingest.model_copy(update={"train_per_class": size})
        ingest(subset, work / "raw", work / "sets", work / "ingest_report.json", seeds=[seed])
        if arm_named(arm).training_set is not None:  # only the arm's own set, and copies only if it lists them
            augment(
                params.augment, work / "sets/original", work / "augmented", work / "sets", preview=None, arms=(arm,)
            )
        # The run's data is rebuilt here each time, so a killed run has nothing to resume from: its resume state
        # stays in the scratch folder and goes with it.
        model = train(
            arm,
            seed,
            params.train,
            work / "sets",
            work / "raw/val",
            work / "models",
            work / "live",
            work / "times",
            work / "resume",
        )
        examples, names = split_examples(work / "raw/test")
        classes = sorted(set(names))
        predicted, _ = predict(model, examples, names, classes, params.evaluate.batch_size)
        result = {
            "size": size,
            "arm": arm,
            "seed": seed,
            "train_images": len(read_csv(work / f"sets/original/seed-{seed}.csv")),
            "test_accuracy": float(np.mean(predicted == np.array([classes.index(name) for name in names]))),
            "val_accuracy": chosen_epoch(work / "live", arm, seed)[1],
        }
    write_text_atomic(runs_dir / f"{run_name(size, arm, seed)}.json", json.dumps(result, indent=2) + "\n")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, required=True)
    parser.add_argument("--arm", required=True)
    parser.add_argument("--seed", type=int, required=True)
    args = parser.parse_args()
    params = load_params()
    check_baseline(params)
    study_run(args.size, args.arm, args.seed, params)


if __name__ == "__main__":
    run_cli(main)
