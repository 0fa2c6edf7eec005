"""Stage `evaluate`: score every (arm, seed) model once on the test split and judge the arms.

Outputs: reports/metrics.json (the schema other tools read), reports/headline.json
(its headline numbers, the file DVC declares as metrics, so `dvc exp show` stays
readable), the report
(reports/report.md and a self-contained reports/report.html, see tasks/evaluate/report.py),
and reports/predictions/<arm>.csv (every test prediction of every seed, the data
behind DVC's confusion-matrix plots). When policies are compared, the best is
chosen on validation accuracy alone; the test split still scores each model once.
"""

import argparse
import json
from pathlib import Path

import numpy as np
from sklearn.metrics import balanced_accuracy_score, confusion_matrix, f1_score, recall_score, roc_auc_score

from tasks.common.arms import comparison_pairs
from tasks.common.curves import chosen_epoch
from tasks.common.files import read_csv, write_csv_atomic, write_text_atomic
from tasks.common.params import Params, load_params
from tasks.common.paths import (
    AUGMENTED_SETS,
    HEADLINE,
    LIVE_DIR,
    METRICS,
    MODELS_DIR,
    ORIGINAL_SETS,
    PREDICTIONS_DIR,
    RAW_MANIFEST,
    REPORT,
    SETS_DIR,
    SPLIT_INDEX,
    TEST_DIR,
    TIMES_DIR,
)
from tasks.common.results import (
    ArmResult,
    Budget,
    Comparison,
    Confusion,
    Dataset,
    McNemar,
    Metrics,
    PolicyChoice,
    Score,
    read_result,
    write_result,
)
from tasks.common.stats import (
    holm,
    mcnemar_exact,
    mean_ci,
    paired_difference,
    seeds_needed,
    tost,
    verdict,
    verdict_kind,
)
from tasks.evaluate.predict import predict
from tasks.evaluate.report import seeds_needed_section, verdict_table, write_report

SCORES = ("test_accuracy", "balanced_accuracy", "macro_f1", "roc_auc")


def classification_scores(truth: np.ndarray, predicted: np.ndarray, scores: np.ndarray, classes: list[str]) -> dict:
    labels = list(range(len(classes)))
    result = {
        "test_accuracy": float(np.mean(predicted == truth)),
        "balanced_accuracy": float(balanced_accuracy_score(truth, predicted)),
        "macro_f1": float(f1_score(truth, predicted, labels=labels, average="macro", zero_division=0)),
        "recall": recall_score(truth, predicted, labels=labels, average=None, zero_division=0).tolist(),
        "confusion": confusion_matrix(truth, predicted, labels=labels),
    }
    if len(classes) == 2 and len(set(truth.tolist())) == 2:
        result["roc_auc"] = float(roc_auc_score(truth, scores))
    return result


def summarise(
    truth: np.ndarray,
    outcomes: dict[str, list[tuple]],
    classes: list[str],
    budgets: dict[str, Budget],
    seeds: list[int],
    dataset: Dataset,
    confidence: float,
    margin: float,
    policy_choice: PolicyChoice | None = None,
    checkpoint: str = "last",
) -> Metrics:
    """metrics.json's content: per-arm scores with intervals over seeds, and the paired comparisons.

    margin is evaluate.equivalence_margin as a fraction (points / 100), like every difference here.
    """
    arms, correct = {}, {}
    for arm, runs in outcomes.items():
        per_seed = [classification_scores(truth, predicted, scores, classes) for predicted, scores in runs]
        scores = {}
        for name in SCORES:
            if name in per_seed[0]:
                values = [result[name] for result in per_seed]
                estimate = mean_ci(values, confidence)
                scores[name] = Score(mean=estimate.mean, ci95=estimate.ci, runs=values, seeds=seeds)
        arms[arm] = ArmResult(
            **scores,
            per_class_recall=dict(zip(classes, np.mean([s["recall"] for s in per_seed], axis=0).tolist())),
            confusion_matrix=Confusion(
                labels=classes,
                counts=sum(s["confusion"] for s in per_seed).tolist(),
                pooled_over_seeds=len(seeds),
            ),
            budget=budgets[arm],
        )
        correct[arm] = np.concatenate([predicted == truth for predicted, _ in runs])
    pairs = comparison_pairs(list(outcomes))
    differences = {
        key: paired_difference(arms[arm].test_accuracy.runs, arms[base].test_accuracy.runs, confidence)
        for key, (arm, base) in pairs.items()
    }
    adjusted = dict(zip(pairs, holm([difference.p_value for difference in differences.values()])))
    comparisons = {}
    for key, (arm, baseline) in pairs.items():
        treated_runs, baseline_runs = arms[arm].test_accuracy.runs, arms[baseline].test_accuracy.runs
        difference, equivalence = differences[key], tost(treated_runs, baseline_runs, margin, 1 - confidence)
        kind = verdict_kind(difference, equivalence, confidence, margin, adjusted[key])
        needed = (
            seeds_needed(treated_runs, baseline_runs, confidence, margin, len(pairs))
            if kind == "inconclusive"
            else None
        )
        comparisons[key] = Comparison(
            arm=arm,
            baseline=baseline,
            delta_mean=difference.mean,
            ci95=difference.ci,
            p_value=difference.p_value,
            p_value_holm=adjusted[key],
            comparisons=len(pairs),
            mcnemar=McNemar(**mcnemar_exact(correct[arm], correct[baseline])),
            verdict_kind=kind,
            tost_p=equivalence.p_value,
            ci90=equivalence.ci,
            seeds_needed=needed,
            verdict=verdict(
                arm,
                difference,
                equivalence,
                len(seeds),
                confidence,
                margin,
                baseline,
                adjusted[key],
                len(pairs),
                needed,
            ),
        )
    return Metrics(
        arms=arms,
        comparison=next(iter(comparisons.values())),
        comparisons=comparisons,
        confidence=confidence,
        equivalence_margin=margin,
        dataset=dataset,
        policy_choice=policy_choice,
        checkpoint=checkpoint,
    )


def headline(metrics: Metrics) -> dict:
    """The numbers DVC shows as metrics: each arm's mean test accuracy, each comparison's difference, interval,
    p-values and verdict (improves, hurts, equivalent or inconclusive).

    Keys are short so that `dvc exp show` fits them in one terminal row; metrics.json has the same
    numbers under longer names. A value that does not exist (an interval or p-value from one seed) is None.
    """
    numbers = {"accuracy": {arm: result.test_accuracy.mean for arm, result in metrics.arms.items()}}
    for key, comparison in metrics.comparisons.items():
        low, high = comparison.ci95 or (None, None)
        numbers[key] = {
            "delta": comparison.delta_mean,
            "ci_low": low,
            "ci_high": high,
            "p_value": comparison.p_value,
            "p_holm": comparison.p_value_holm,
            "verdict_kind": comparison.verdict_kind,
        }
    return numbers


def choose_policy(policies: list[str], seeds: list[int], live_dir: Path = LIVE_DIR) -> PolicyChoice | None:
    """The compared policy whose kept models (train.checkpoint) have the best mean validation accuracy over seeds.

    Only the validation split decides: test accuracy plays no part in the choice, so the chosen
    policy's test result is an honest estimate, not the best of several looks at the test split.
    """
    if not policies:
        return None
    validation = {arm: float(np.mean([chosen_epoch(live_dir, arm, seed)[1] for seed in seeds])) for arm in policies}
    return PolicyChoice(
        chosen=max(validation, key=validation.get),
        by="mean validation accuracy of the kept models over seeds",
        validation_accuracy=validation,
    )


def evaluate(params: Params, models_dir: Path = MODELS_DIR, test_dir: Path = TEST_DIR) -> Metrics:
    from tasks.common.data import examples_of, presentations_per_epoch  # TensorFlow's tf.data: see predict

    test_images = read_csv(test_dir / SPLIT_INDEX)
    examples, names = examples_of(test_images)
    classes = sorted(set(names))
    truth = np.array([classes.index(name) for name in names])
    outcomes: dict[str, list[tuple]] = {}
    budgets = {}
    first_seed = f"seed-{params.train.seeds[0]}.csv"
    for arm in params.arms:
        per_epoch = presentations_per_epoch(SETS_DIR / arm / first_seed)
        budgets[arm] = Budget(
            presentations_per_epoch=per_epoch,
            epochs=params.train.epochs,
            presentations=per_epoch * params.train.epochs,
            chosen_epochs=[chosen_epoch(LIVE_DIR, arm, seed)[0] for seed in params.train.seeds],  # by train.checkpoint
        )
        rows = []
        for seed in params.train.seeds:
            predicted, scores = predict(
                models_dir / arm / f"seed-{seed}.keras", examples, names, classes, params.evaluate.batch_size
            )
            outcomes.setdefault(arm, []).append((predicted, scores))
            rows += [
                {
                    "seed": seed,
                    "image": image["id"],
                    "actual": classes[a],
                    "predicted": classes[p],
                    "score": f"{s:.6f}",
                }
                for image, a, p, s in zip(test_images, truth, predicted, scores)
            ]
        write_csv_atomic(PREDICTIONS_DIR / f"{arm}.csv", ("seed", "image", "actual", "predicted", "score"), rows)
    manifest = read_csv(RAW_MANIFEST)
    train = len(read_csv(ORIGINAL_SETS / first_seed))  # each seed's own subset, of this size
    dataset = Dataset(
        val=sum(row["split"] == "val" for row in manifest),
        test=sum(row["split"] == "test" for row in manifest),
        train=train,
        augmented=len(read_csv(AUGMENTED_SETS / first_seed)) - train,
        classes=classes,
    )
    margin = params.evaluate.equivalence_margin / 100
    metrics = summarise(
        truth,
        outcomes,
        classes,
        budgets,
        params.train.seeds,
        dataset,
        params.evaluate.confidence,
        margin,
        choose_policy(params.evaluate.compare_policies, params.train.seeds),
        params.train.checkpoint,
    )
    write_result(METRICS, metrics)
    write_text_atomic(HEADLINE, json.dumps(headline(metrics), indent=2) + "\n")
    write_report(metrics)
    return metrics


def show(metrics_path: Path = METRICS) -> None:
    """Print the verdict and table of the last evaluation, and what deciding its inconclusive comparisons would cost."""
    metrics = read_result(metrics_path, Metrics)
    print("\n".join(comparison.verdict for comparison in metrics.comparisons.values()))
    print()
    print(verdict_table(metrics))
    print(seeds_needed_section(metrics, MODELS_DIR, TIMES_DIR), end="")
    print(f"\nFull report: {REPORT} and {REPORT.with_suffix('.html')}   metrics: {metrics_path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--show", action="store_true", help="print the last verdict instead of evaluating")
    if parser.parse_args().show:
        show()
    else:
        evaluate(load_params())
        show()
