"""Stage `evaluate`: score every (arm, seed) model once on the test split and write the verdict.

Outputs: reports/metrics.json (the schema other tools read), reports/report.md
(the verdict first, then the table), and reports/predictions/<arm>.csv (every
test prediction of every seed, the data behind DVC's confusion-matrix plots).
"""

import argparse
import json
from pathlib import Path

import keras
import numpy as np

from tasks.data import image_dataset, presentations_per_epoch, split_files
from tasks.errors import UserError, run_cli
from tasks.files import read_csv, write_csv_atomic, write_text_atomic
from tasks.params import Params, load_params
from tasks.stats import mean_ci, paired_difference, verdict

TEST_DIR = Path("data/raw/test")
MODELS_DIR = Path("models")
MANIFEST = Path("data/raw/manifest.csv")
SETS_DIR = Path("data/sets")
AUGMENTED_SET = SETS_DIR / "augmented.csv"
METRICS = Path("reports/metrics.json")
REPORT = Path("reports/report.md")
PREDICTIONS_DIR = Path("reports/predictions")
BASELINE = "original"


def predict(model_path: Path, paths: list[str], names: list[str], classes: list[str], batch_size: int) -> np.ndarray:
    """Predicted class index for every test image, in the order given."""
    if not model_path.is_file():
        raise UserError(f"{model_path} is missing: run 'dvc repro' so that every (arm, seed) in params.yaml is trained.")
    model = keras.saving.load_model(model_path)
    # Called eagerly, batch by batch: Model.predict would trace a new graph for every model loaded.
    scores = np.concatenate([model(images, training=False) for images, _ in image_dataset(paths, names, classes, batch_size)])
    return (scores[:, 0] > 0.5).astype(int) if scores.shape[1] == 1 else scores.argmax(axis=1)


def comparison_pairs(arms: list[str]) -> dict[str, tuple[str, str]]:
    """Every arm against the baseline, keyed by arm; and the two ways of augmenting against each other."""
    pairs = {arm: (arm, BASELINE) for arm in arms if arm != BASELINE}
    if {"online", "augmented"} <= set(arms):
        pairs["online-vs-augmented"] = ("online", "augmented")
    return pairs


def summarise(accuracies: dict[str, list[float]], budgets: dict[str, dict], seeds: list[int], dataset: dict, confidence: float) -> dict:
    """metrics.json's content: per-arm accuracy with its interval and budget, and the paired comparisons."""
    arms = {}
    for arm, runs in accuracies.items():
        estimate = mean_ci(runs, confidence)
        arms[arm] = {"test_accuracy": {"mean": estimate.mean, "ci95": estimate.ci, "runs": runs, "seeds": seeds}, "budget": budgets[arm]}
    comparisons = {}
    for key, (arm, baseline) in comparison_pairs(list(accuracies)).items():
        difference = paired_difference(accuracies[arm], accuracies[baseline], confidence)
        comparisons[key] = {
            "arm": arm,
            "baseline": baseline,
            "delta_mean": difference.mean,
            "ci95": difference.ci,
            "p_value": difference.p_value,
            "test": "paired t-test over seeds",
            "verdict": verdict(arm, difference, len(seeds), confidence, baseline),
        }
    first = next(iter(comparisons.values()))
    return {"arms": arms, "comparison": first, "comparisons": comparisons, "confidence": confidence, "dataset": dataset}


def percent(value: float) -> str:
    return f"{100 * value:.1f}%"


def interval(ci: list[float] | tuple[float, float] | None, signed: bool = False) -> str:
    if ci is None:
        return "n/a (one seed)"
    template = "{:+.1f}" if signed else "{:.1f}"
    return " to ".join(template.format(100 * bound) for bound in ci)


def verdict_table(metrics: dict) -> str:
    """The markdown table printed by `make run` and shown in the report and the Prefect UI."""
    level = f"{100 * metrics['confidence']:g}%"
    lines = [
        f"| arm | images per epoch | mean test accuracy | {level} CI | runs | vs original (points) | {level} CI | p-value |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for arm, result in metrics["arms"].items():
        accuracy = result["test_accuracy"]
        comparison = metrics["comparisons"].get(arm)
        versus = (
            [f"{100 * comparison['delta_mean']:+.1f}", interval(comparison["ci95"], signed=True),
             "n/a" if comparison["p_value"] is None else f"{comparison['p_value']:.3g}"]
            if comparison else ["(baseline)", "", ""]
        )  # fmt: skip
        runs = ", ".join(percent(run) for run in accuracy["runs"])
        budget = result["budget"]["presentations_per_epoch"]
        lines.append(f"| {arm} | {budget} | {percent(accuracy['mean'])} | {interval(accuracy['ci95'])} | {runs} | " + " | ".join(versus) + " |")
    return "\n".join(lines)


def report_markdown(metrics: dict) -> str:
    dataset = metrics["dataset"]
    verdicts = "\n".join(f"- {comparison['verdict']}" for comparison in metrics["comparisons"].values())
    return f"""# Does augmentation help?

{verdicts}

{verdict_table(metrics)}

Each arm trains the same CNN once per seed; arms share the seed's initialisation and data order.
Every model is scored once on the test split ({dataset['test']} images of {", ".join(dataset['classes'])}).
Intervals are two-sided t-intervals over seeds; the comparison is a paired t-test over seeds.

Training images: {dataset['train']} originals; the augmented arm adds {dataset['augmented']} stored copies; the
online arm, where run, draws as many transformed images on the fly each epoch, so both see the same
number of images per epoch (the table's second column) for the same number of epochs.
Validation images (learning curves only): {dataset['val']}.

![Augmentation preview](augment_preview.png)
"""


def evaluate(params: Params, models_dir: Path = MODELS_DIR, test_dir: Path = TEST_DIR) -> dict:
    paths, names = split_files(test_dir)
    classes = sorted(set(names))
    truth = np.array([classes.index(name) for name in names])
    accuracies: dict[str, list[float]] = {}
    budgets = {}
    for arm in params.train.arms:
        per_epoch = presentations_per_epoch(SETS_DIR / f"{arm}.csv")
        budgets[arm] = {"presentations_per_epoch": per_epoch, "epochs": params.train.epochs, "presentations": per_epoch * params.train.epochs}
        predictions = []
        for seed in params.train.seeds:
            predicted = predict(models_dir / arm / f"seed-{seed}.keras", paths, names, classes, params.evaluate.batch_size)
            accuracies.setdefault(arm, []).append(float((predicted == truth).mean()))
            predictions += [{"seed": seed, "actual": classes[a], "predicted": classes[p]} for a, p in zip(truth, predicted)]
        write_csv_atomic(PREDICTIONS_DIR / f"{arm}.csv", ("seed", "actual", "predicted"), predictions)
    manifest = read_csv(MANIFEST)
    dataset = {split: sum(row["split"] == split for row in manifest) for split in ("train", "val", "test")}
    dataset |= {"augmented": len(read_csv(AUGMENTED_SET)) - dataset["train"], "classes": classes}
    metrics = summarise(accuracies, budgets, params.train.seeds, dataset, params.evaluate.confidence)
    write_text_atomic(METRICS, json.dumps(metrics, indent=2) + "\n")
    write_text_atomic(REPORT, report_markdown(metrics))
    return metrics


def show(metrics_path: Path = METRICS) -> None:
    """Print the verdict and table of the last evaluation."""
    if not metrics_path.is_file():
        raise UserError(f"{metrics_path} does not exist yet: run 'make run' (or 'dvc repro') first.")
    metrics = json.loads(metrics_path.read_text())
    print("\n".join(comparison["verdict"] for comparison in metrics["comparisons"].values()))
    print()
    print(verdict_table(metrics))
    print(f"\nFull report: {REPORT}   metrics: {metrics_path}   preview: reports/augment_preview.png")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--show", action="store_true", help="print the last verdict instead of evaluating")
    if parser.parse_args().show:
        show()
    else:
        evaluate(load_params())
        show()


if __name__ == "__main__":
    run_cli(main)
