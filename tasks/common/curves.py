"""A training run's validation curve and the epoch it kept, read back from its dvclive log."""

import csv
from pathlib import Path

import yaml


def validation_curve(live_dir: Path, arm: str, seed: int) -> list[tuple[int, float]]:
    """(epoch, validation accuracy) of one training run, from its dvclive log."""
    with open(live_dir / f"{arm}-seed-{seed}" / "plots/metrics/eval/accuracy.tsv", newline="") as handle:
        return [(int(row["step"]) + 1, float(row["accuracy"])) for row in csv.DictReader(handle, delimiter="\t")]


def chosen_epoch(live_dir: Path, arm: str, seed: int) -> tuple[int, float]:
    """(the epoch whose weights the run kept, that epoch's validation accuracy), from its dvclive log."""
    chosen = yaml.safe_load((live_dir / f"{arm}-seed-{seed}" / "params.yaml").read_text())["chosen_epoch"]
    return chosen, dict(validation_curve(live_dir, arm, seed))[chosen]
