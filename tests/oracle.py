"""An oracle for the numbers augflow reports: each recomputed from the run's own files, without augflow's code.

`evaluate` writes reports/metrics.json and reports/headline.json; the scaling study writes
reports/scaling.json. The functions here recompute what those files report from what the run
left behind (the per-seed predictions in reports/predictions/<arm>.csv, the test split in
data/raw/test, the study's runs in study/runs/) and the project's params.yaml, with scipy,
statsmodels and scikit-learn alone, by the rules docs/verdict.md and docs/scaling-study.md
state. Nothing from tasks/ is imported: a mistake in augflow's statistics cannot be copied here.

Each check lists its disagreements, one readable line each ("comparisons.online.verdict_kind:
reported 'improves', expected 'inconclusive'"); assert_metrics_agree and assert_scaling_agrees
fail with all of them.
"""

import csv
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import statsmodels.formula.api as smf
import yaml
from scipy import stats
from sklearn.metrics import balanced_accuracy_score, confusion_matrix, f1_score, recall_score, roc_auc_score
from statsmodels.stats.contingency_tables import mcnemar
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.weightstats import DescrStatsW, ttost_paired

BASELINE = "original"
RELATIVE, ABSOLUTE = 1e-9, 1e-12  # float results agree to these tolerances: far finer than the 3 digits printed


@dataclass(frozen=True)
class Within:
    """An expected number known only to within `tolerance` (a score rebuilt from 6-decimal probabilities)."""

    value: float
    tolerance: float


def disagreements(expected, reported, where: str = "") -> list[str]:
    """Every place where `reported` differs from `expected`; only the keys `expected` names are compared."""
    if isinstance(expected, dict):
        if not isinstance(reported, dict):
            return [f"{where}: reported {reported!r}, expected a mapping"]
        found = []
        for key, value in expected.items():
            if key not in reported:
                found.append(f"{where}.{key}: missing")
            else:
                found += disagreements(value, reported[key], f"{where}.{key}" if where else str(key))
        return found
    if isinstance(expected, (list, tuple)):
        if not isinstance(reported, (list, tuple)) or len(reported) != len(expected):
            return [f"{where}: reported {reported!r}, expected {list(expected)!r}"]
        return [
            line
            for index, (a, b) in enumerate(zip(expected, reported))
            for line in disagreements(a, b, f"{where}[{index}]")
        ]
    if isinstance(expected, Within):
        ok = isinstance(reported, (int, float)) and abs(reported - expected.value) <= expected.tolerance + ABSOLUTE
        return [] if ok else [f"{where}: reported {reported!r}, expected {expected.value!r} ± {expected.tolerance:.2g}"]
    if isinstance(expected, float) and not isinstance(expected, bool):
        number = isinstance(reported, (int, float)) and not isinstance(reported, bool)
        ok = number and math.isclose(reported, expected, rel_tol=RELATIVE, abs_tol=ABSOLUTE)
        return [] if ok else [f"{where}: reported {reported!r}, expected {expected!r}"]
    return (
        []
        if reported == expected and type(reported) is type(expected)
        else [f"{where}: reported {reported!r}, expected {expected!r}"]
    )


# ---- the statistics, by the documented rules ----


def t_interval(values: np.ndarray, confidence: float) -> list[float] | None:
    """The two-sided t-interval of the mean at `confidence`; none from one value; the point when all are equal."""
    if len(values) < 2:
        return None
    low, high = DescrStatsW(np.asarray(values, dtype=float)).tconfint_mean(alpha=1 - confidence)
    return [float(low), float(high)]


@dataclass(frozen=True)
class Paired:
    """What docs/verdict.md reports of one comparison of paired per-seed accuracies."""

    delta_mean: float
    ci95: list[float] | None
    p_value: float | None
    ci90: list[float] | None
    tost_p: float | None
    spread: bool  # False when every seed gives the same difference (or one seed)
    differences: np.ndarray


def paired(
    treated: np.ndarray, baseline: np.ndarray, equal_differences: bool, confidence: float, margin: float
) -> Paired:
    """Mean difference, its t-interval, the paired t-test, and the two one-sided tests within ±margin.

    equal_differences comes from exact counts, not from floats that may differ in their last bit.
    With no spread the mean alone decides (docs/verdict.md): t-test p 0 (1 for a mean of 0),
    TOST p 0 strictly inside ±margin, else 1.
    """
    differences = treated - baseline
    mean = float(np.mean(differences))
    alpha = 1 - confidence
    if len(differences) < 2:
        return Paired(mean, None, None, None, None, False, differences)
    if equal_differences:
        return Paired(
            mean,
            [mean, mean],
            1.0 if mean == 0 else 0.0,
            [mean, mean],
            0.0 if abs(mean) < margin else 1.0,
            False,
            differences,
        )
    p_value = float(stats.ttest_rel(treated, baseline).pvalue)
    tost_p = float(ttost_paired(treated, baseline, -margin, margin)[0])
    return Paired(
        mean,
        t_interval(differences, confidence),
        p_value,
        t_interval(differences, 1 - 2 * alpha),
        tost_p,
        True,
        differences,
    )


def holm(p_values: list[float | None]) -> list[float | None]:
    present = [p for p in p_values if p is not None]
    adjusted = iter(multipletests(present, method="holm")[1].tolist() if present else [])
    return [None if p is None else float(next(adjusted)) for p in p_values]


def verdict_kind(comparison: Paired, p_for_verdict: float | None, confidence: float, margin: float) -> str:
    """docs/verdict.md: improves / hurts when the t-interval excludes 0 and the (Holm-adjusted) p is under
    1 - confidence, checked first; else equivalent when the equivalence interval lies strictly inside ±margin;
    else inconclusive (always, from one seed)."""
    if comparison.ci95 is None:
        return "inconclusive"
    low, high = comparison.ci95
    if p_for_verdict < 1 - confidence and low > 0:
        return "improves"
    if p_for_verdict < 1 - confidence and high < 0:
        return "hurts"
    if -margin < comparison.ci90[0] and comparison.ci90[1] < margin:
        return "equivalent"
    return "inconclusive"


def seeds_needed(comparison: Paired, confidence: float, margin: float, comparisons: int) -> int | None:
    """docs/verdict.md: the first number of seeds at which, with this mean and standard deviation of the
    differences, the 1 - alpha/k interval would exclude 0 or the 1 - 2 alpha interval would fit inside
    ±margin. Searched seed count by seed count, without assuming that the answer is monotone."""
    if not comparison.spread:
        return None
    mean, deviation, alpha = (
        abs(float(np.mean(comparison.differences))),
        float(np.std(comparison.differences, ddof=1)),
        1 - confidence,
    )
    for start in range(2, 10**8, 10**5):
        seeds = np.arange(start, start + 10**5)
        half_width = deviation / np.sqrt(seeds)
        excludes_zero = stats.t.ppf(1 - alpha / (2 * comparisons), seeds - 1) * half_width < mean
        fits_inside = stats.t.ppf(1 - alpha, seeds - 1) * half_width < margin - mean
        deciding = np.flatnonzero(excludes_zero | fits_inside)
        if deciding.size:
            return int(seeds[deciding[0]])
    raise AssertionError("no seed count up to 10^8 decides the comparison")


# ---- evaluate: reports/metrics.json and reports/headline.json ----


def read_params(repo: Path) -> dict:
    return yaml.safe_load((repo / "params.yaml").read_text())


def comparison_pairs(arms: list[str]) -> dict[str, tuple[str, str]]:
    """docs/verdict.md: every arm against the baseline (original, or the first arm without it), keyed by the arm;
    online also against augmented; and, when repeated runs, augmented and online against repeated; a pair of
    arms is compared once, the isolating comparison standing where the baseline is one of its arms."""
    baseline = BASELINE if BASELINE in arms else arms[0]
    isolating = [
        (t, c)
        for t, c in (("online", "augmented"), ("augmented", "repeated"), ("online", "repeated"))
        if t in arms and c in arms
    ]
    pairs = {
        arm: (arm, baseline)
        for arm in arms
        if arm != baseline and not any({arm, baseline} == {t, c} for t, c in isolating)
    }
    return pairs | {f"{treated}-vs-{control}": (treated, control) for treated, control in isolating}


def test_split(repo: Path) -> dict[str, str]:
    """Each test image's id and class, from the split's index, data/raw/test/index.csv."""
    with open(repo / "data/raw/test/index.csv", newline="") as index:
        return {row["id"]: row["class"] for row in csv.DictReader(index)}


def auc_from_rounded(truth: np.ndarray, scores: np.ndarray) -> Within:
    """ROC AUC from scores written to 6 decimals. Rounding keeps every strict order between rounded values,
    so only a positive and a negative image whose rounded scores tie can have been ordered otherwise:
    each such pair moves the AUC by at most half a pair's share."""
    positives, negatives = scores[truth == 1], scores[truth == 0]
    ties = int(np.sum(positives[:, None] == negatives[None, :]))
    return Within(float(roc_auc_score(truth, scores)), 0.5 * ties / (len(positives) * len(negatives)))


def expected_metrics(repo: Path) -> dict:
    """What reports/metrics.json should hold, as far as its numbers and verdicts go."""
    params = read_params(repo)
    confidence, margin = float(params["evaluate"]["confidence"]), params["evaluate"]["equivalence_margin"] / 100
    seeds = list(params["train"]["seeds"])
    arms = [*params["train"]["arms"], *params["evaluate"].get("compare_policies", [])]
    split = test_split(repo)
    classes = sorted(set(split.values()))
    per_arm, correct = {}, {}
    for arm in arms:
        table = pd.read_csv(
            repo / f"reports/predictions/{arm}.csv", dtype={"image": str, "actual": str, "predicted": str}
        )
        assert sorted(set(table["seed"])) == sorted(seeds), (
            f"{arm}.csv holds seeds {sorted(set(table['seed']))}, params.yaml {seeds}"
        )
        runs = {name: [] for name in ("test_accuracy", "balanced_accuracy", "macro_f1", "roc_auc")}
        recalls, confusion, hits = [], np.zeros((len(classes), len(classes)), dtype=int), []
        for seed in seeds:
            rows = table[table["seed"] == seed]
            assert dict(zip(rows["image"], rows["actual"])) == split and len(rows) == len(split), (
                f"{arm}.csv, seed {seed}: not the test split"
            )
            truth, predicted = rows["actual"].to_numpy(), rows["predicted"].to_numpy()
            runs["test_accuracy"].append(int(np.sum(predicted == truth)) / len(truth))
            runs["balanced_accuracy"].append(float(balanced_accuracy_score(truth, predicted)))
            runs["macro_f1"].append(float(f1_score(truth, predicted, labels=classes, average="macro", zero_division=0)))
            if len(classes) == 2:  # the score is the probability of the second class
                runs["roc_auc"].append(
                    auc_from_rounded((truth == classes[1]).astype(int), rows["score"].to_numpy(dtype=float))
                )
            recalls.append(recall_score(truth, predicted, labels=classes, average=None, zero_division=0))
            confusion += confusion_matrix(truth, predicted, labels=classes)
            hits.append(pd.Series(predicted == truth, index=rows["image"].to_numpy()))
        per_arm[arm] = {}
        for name, values in runs.items():
            if values:
                numbers = np.array([v.value if isinstance(v, Within) else v for v in values])
                if name == "roc_auc":  # runs off by at most `slack` move the mean by as much, the standard error by
                    slack = max(v.tolerance for v in values)  # slack / sqrt(n - 1), the interval's ends by the sum
                    interval = t_interval(numbers, confidence)
                    if interval is not None:
                        shift = slack * (
                            1 + stats.t.ppf((1 + confidence) / 2, len(seeds) - 1) / math.sqrt(len(seeds) - 1)
                        )
                        interval = [Within(end, shift) for end in interval]
                    per_arm[arm][name] = {
                        "mean": Within(float(numbers.mean()), slack),
                        "ci95": interval,
                        "runs": values,
                        "seeds": seeds,
                    }
                else:
                    per_arm[arm][name] = {
                        "mean": float(numbers.mean()),
                        "ci95": t_interval(numbers, confidence),
                        "runs": values,
                        "seeds": seeds,
                    }
        per_arm[arm]["per_class_recall"] = dict(zip(classes, np.mean(recalls, axis=0).tolist()))
        per_arm[arm]["confusion_matrix"] = {
            "labels": classes,
            "counts": confusion.tolist(),
            "pooled_over_seeds": len(seeds),
        }
        correct[arm] = hits
    counts = {arm: [round(run * len(split)) for run in per_arm[arm]["test_accuracy"]["runs"]] for arm in arms}

    pairs = comparison_pairs(arms)
    results = {}
    for key, (treated, control) in pairs.items():
        differences = [a - b for a, b in zip(counts[treated], counts[control])]
        accuracies = (
            np.array(per_arm[treated]["test_accuracy"]["runs"]),
            np.array(per_arm[control]["test_accuracy"]["runs"]),
        )
        results[key] = paired(*accuracies, len(set(differences)) == 1, confidence, margin)
    adjusted = dict(zip(pairs, holm([result.p_value for result in results.values()])))
    comparisons = {}
    for key, (treated, control) in pairs.items():
        result = results[key]
        p_for_verdict = adjusted[key] if len(pairs) > 1 else result.p_value
        kind = verdict_kind(result, p_for_verdict, confidence, margin)
        # McNemar on the per-image outcomes pooled over seeds, paired by (seed, image)
        both = pd.concat(
            [
                pd.DataFrame({"treated": a, "baseline": b.reindex(a.index)})
                for a, b in zip(correct[treated], correct[control])
            ]
        )
        treated_only, baseline_only = (
            int((both.treated & ~both.baseline).sum()),
            int((~both.treated & both.baseline).sum()),
        )
        table = [
            [int((both.treated & both.baseline).sum()), treated_only],
            [baseline_only, int((~both.treated & ~both.baseline).sum())],
        ]
        comparisons[key] = {
            "arm": treated,
            "baseline": control,
            "comparisons": len(pairs),
            "delta_mean": result.delta_mean,
            "ci95": result.ci95,
            "p_value": result.p_value,
            "p_value_holm": adjusted[key],
            "ci90": result.ci90,
            "tost_p": result.tost_p,
            "verdict_kind": kind,
            "seeds_needed": seeds_needed(result, confidence, margin, len(pairs)) if kind == "inconclusive" else None,
            "mcnemar": {
                "treated_only_correct": treated_only,
                "baseline_only_correct": baseline_only,
                "p_value": float(mcnemar(table, exact=True).pvalue),
            },
        }
    dataset = {"test": len(split), "classes": classes}
    return {
        "confidence": confidence,
        "equivalence_margin": margin,
        "dataset": dataset,
        "arms": per_arm,
        "comparisons": comparisons,
        "comparison": next(iter(comparisons.values())),
    }


VERDICT_WORDS = {
    "improves": "improves test accuracy by",
    "hurts": "hurts test accuracy by",
    "equivalent": ": equivalent within",
    "inconclusive": ": inconclusive",
}


def metrics_disagreements(repo: Path) -> list[str]:
    """Everything in reports/metrics.json and reports/headline.json that the oracle computes otherwise."""
    expected = expected_metrics(repo)
    reported = json.loads((repo / "reports/metrics.json").read_text())
    found = disagreements(expected, reported)
    if set(reported["comparisons"]) != set(expected["comparisons"]):
        found.append(
            f"comparisons: reported {sorted(reported['comparisons'])}, expected {sorted(expected['comparisons'])}"
        )
    for key, comparison in expected[
        "comparisons"
    ].items():  # the sentence says the verdict, and the seeds it would need
        sentence = reported["comparisons"].get(key, {}).get("verdict", "")
        if VERDICT_WORDS[comparison["verdict_kind"]] not in sentence:
            found.append(f"comparisons.{key}.verdict: {sentence!r} does not say {comparison['verdict_kind']}")
        if (
            comparison["seeds_needed"] is not None
            and f"About {comparison['seeds_needed']} seeds would decide it" not in sentence
        ):
            found.append(
                f"comparisons.{key}.verdict: {sentence!r} does not say about {comparison['seeds_needed']} seeds"
            )
    headline = {"accuracy": {arm: result["test_accuracy"]["mean"] for arm, result in expected["arms"].items()}}
    for key, comparison in expected["comparisons"].items():
        low, high = comparison["ci95"] or (None, None)
        headline[key] = {
            "delta": comparison["delta_mean"],
            "ci_low": low,
            "ci_high": high,
            "p_value": comparison["p_value"],
            "p_holm": comparison["p_value_holm"],
            "verdict_kind": comparison["verdict_kind"],
        }
    return found + disagreements(headline, json.loads((repo / "reports/headline.json").read_text()), "headline")


# ---- the scaling study: reports/scaling.json ----


def expected_scaling(repo: Path) -> dict:
    """What reports/scaling.json should hold, from study/runs/<size>-<arm>-<seed>.json and params.yaml
    (docs/scaling-study.md): per arm and size the mean test accuracy and its interval; every comparison
    make run makes (each arm's gain over original, and the comparisons isolating augmentation), per size,
    Holm-corrected in one family over all of them and every size, with its verdict; per comparison the
    slope of its difference against log2(images per class), least squares with one intercept per seed."""
    params = read_params(repo)
    confidence, margin = float(params["evaluate"]["confidence"]), params["evaluate"]["equivalence_margin"] / 100
    seeds, sizes, arms = list(params["train"]["seeds"]), list(params["study"]["sizes"]), list(params["train"]["arms"])
    accuracy = {
        (size, arm): np.array(
            [json.loads((repo / f"study/runs/{size}-{arm}-{seed}.json").read_text())["test_accuracy"] for seed in seeds]
        )
        for size in sizes
        for arm in arms
    }
    # Every run scores the same test split: test_per_class images of each class. Its size turns accuracies back
    # into counts, so that equal differences are told exactly, not by floats that may differ in their last bit.
    per_class = params["ingest"].get("test_per_class")
    test_images = per_class * len(params["ingest"]["classes"]) if per_class else None
    if test_images:
        scaled = np.concatenate(list(accuracy.values())) * test_images
        assert np.all(np.abs(scaled - np.round(scaled)) < 1e-6), (
            f"study/runs: test accuracies that are not counts of {test_images} images"
        )
    curves = {
        arm: [
            {
                "images_per_class": size,
                "mean": float(runs.mean()),
                "ci95": t_interval(runs, confidence),
                "runs": runs.tolist(),
            }
            for size in sizes
            for runs in [accuracy[size, arm]]
        ]
        for arm in arms
    }
    # docs/scaling-study.md: every comparison make run makes, at every size, in one Holm family.
    pairs = comparison_pairs(arms)
    family = [(key, size) for key in pairs for size in sizes]
    results = {}
    for key, size in family:
        treated, control = pairs[key]
        differences = accuracy[size, treated] - accuracy[size, control]
        if test_images:
            equal = len({round(d * test_images) for d in differences}) == 1
        else:  # every official test image (test_per_class null): equal to the last bit
            equal = bool(np.all(differences == differences[0]))
        results[key, size] = paired(accuracy[size, treated], accuracy[size, control], equal, confidence, margin)
    adjusted = dict(zip(family, holm([result.p_value for result in results.values()])))
    points, trends = {}, {}
    for key, size in family:
        result = results[key, size]
        p_for_verdict = adjusted[key, size] if len(family) > 1 else result.p_value
        points.setdefault(key, []).append(
            {
                "images_per_class": size,
                "delta_mean": result.delta_mean,
                "ci95": result.ci95,
                "p_value": result.p_value,
                "p_value_holm": adjusted[key, size],
                "ci90": result.ci90,
                "tost_p": result.tost_p,
                "verdict_kind": verdict_kind(result, p_for_verdict, confidence, margin),
            }
        )
    for key, (treated, control) in pairs.items():
        if len(sizes) < 2:
            trends[key] = {"direction": None}
            continue
        frame = pd.DataFrame(
            [
                {
                    "gain": accuracy[size, treated][index] - accuracy[size, control][index],
                    "doublings": math.log2(size),
                    "seed": str(seed),
                }
                for size in sizes
                for index, seed in enumerate(seeds)
            ]
        )
        fit = smf.ols("gain ~ doublings + C(seed)", data=frame).fit()
        slope = float(fit.params["doublings"])
        if fit.df_resid < 1:
            trends[key] = {"slope_per_doubling": slope, "ci95": None, "p_value": None, "direction": None}
            continue
        low, high = (float(end) for end in fit.conf_int(alpha=1 - confidence).loc["doublings"])
        direction = "shrinks" if high < 0 else "grows" if low > 0 else "shows no detectable trend"
        trends[key] = {
            "slope_per_doubling": slope,
            "ci95": [low, high],
            "p_value": float(fit.pvalues["doublings"]),
            "direction": direction,
        }
    against_original = [key for key, (_, control) in pairs.items() if control == BASELINE]
    isolating = [key for key in pairs if key not in against_original]
    return {
        "confidence": confidence,
        "equivalence_margin": margin,
        "seeds": seeds,
        "sizes": sizes,
        "test_accuracy": curves,
        "gain_over_original": {key: points[key] for key in against_original},
        "trend": {key: trends[key] for key in against_original},
        "isolating": {key: points[key] for key in isolating},
        "isolating_trend": {key: trends[key] for key in isolating},
        "holm_family": {"comparisons": len(family)},
    }


def scaling_disagreements(repo: Path) -> list[str]:
    """Everything in reports/scaling.json that the oracle computes otherwise, the trend sentences included."""
    expected = expected_scaling(repo)
    reported = json.loads((repo / "reports/scaling.json").read_text())
    directions = {
        (group, key): trend.pop("direction")
        for group in ("trend", "isolating_trend")
        for key, trend in expected[group].items()
    }
    found = disagreements(expected, reported)
    for group in ("gain_over_original", "isolating"):
        if set(reported.get(group, {})) != set(expected[group]):
            found.append(f"{group}: reported {sorted(reported.get(group, {}))}, expected {sorted(expected[group])}")
    for (group, arm), direction in directions.items():
        sentence = reported.get(group, {}).get(arm, {}).get("sentence", "")
        said = f"the gain {direction} as data grows" if direction else "too few sizes or seeds to fit a trend"
        if said not in sentence:
            found.append(f"{group}.{arm}.sentence: {sentence!r} does not say {said!r}")
    return found


def a_case_holm_decides(repo: Path) -> tuple[dict[tuple[str, int], tuple[str, int]], float] | None:
    """Models to put in some (arm, seed) places, and a confidence level, at which evaluating again makes Holm's
    correction decide a verdict: a comparison significant on its own paired p-value but not on its Holm-adjusted
    one, so that a verdict taken on the wrong one shows.

    With two seeds a paired p-value is under 0.5 (and the confidence levels augflow accepts stop at 0.5) only
    when both seeds' differences have the same sign and differ, which one-epoch models that predict one class
    rarely give. Three models of different accuracies a < b < c make one: the control arm gets a on both seeds,
    the treated arm c and b; and another arm compared with the same control gets c on both, a gain equal on
    both seeds, which the mean alone decides (improves). Returned as {(arm, seed): (arm, seed) whose model goes
    there} with the level; None when the run's models take fewer than three accuracies, or no comparison of
    the family then allows it."""
    params = read_params(repo)
    arms, seeds = [*params["train"]["arms"], *params["evaluate"].get("compare_policies", [])], params["train"]["seeds"]
    split = test_split(repo)
    correct = {}
    for arm in arms:
        table = pd.read_csv(
            repo / f"reports/predictions/{arm}.csv", dtype={"image": str, "actual": str, "predicted": str}
        )
        for seed in seeds:
            rows = table[table["seed"] == seed]
            correct[arm, seed] = int(np.sum(rows["predicted"].to_numpy() == rows["actual"].to_numpy()))
    by_count = {count: place for place, count in sorted(correct.items(), reverse=True)}  # a model for each count
    if len(by_count) < 3 or len(seeds) != 2:
        return None
    low, middle, high = sorted(by_count)[0], sorted(by_count)[1], sorted(by_count)[-1]
    pairs = comparison_pairs(arms)
    for treated, control in pairs.values():
        placed = {(control, seeds[0]): by_count[low], (control, seeds[1]): by_count[low]}
        placed |= {(treated, seeds[0]): by_count[high], (treated, seeds[1]): by_count[middle]}
        for other in [arm for arm in arms if (arm, control) in pairs.values() and arm != treated][:1]:  # and one gain
            placed |= {(other, seeds[0]): by_count[high], (other, seeds[1]): by_count[high]}  # equal on both seeds
        counts = {arm: np.array([correct[placed.get((arm, seed), (arm, seed))] for seed in seeds]) for arm in arms}
        results = [
            paired(counts[t] / len(split), counts[c] / len(split), len(set(counts[t] - counts[c])) == 1, 0.95, 0.01)
            for t, c in pairs.values()
        ]
        raw = [result.p_value for result in results]
        candidates = [
            (p, adjusted)
            for p, adjusted, result in zip(raw, holm(raw), results)
            if result.spread and p < min(adjusted, 0.5)
        ]
        if candidates:
            p, adjusted = min(candidates)
            alpha = round((p + min(adjusted, 0.5)) / 2, 4)
            if p < alpha <= adjusted and alpha < 0.5:
                return placed, round(1 - alpha, 4)
    return None


def assert_metrics_agree(repo: Path) -> None:
    if found := metrics_disagreements(repo):
        raise AssertionError("reports/metrics.json and headline.json disagree with the oracle:\n" + "\n".join(found))


def assert_scaling_agrees(repo: Path) -> None:
    if found := scaling_disagreements(repo):
        raise AssertionError("reports/scaling.json disagrees with the oracle:\n" + "\n".join(found))
