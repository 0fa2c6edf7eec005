"""The report the evaluate stage writes: verdict first, then tables, plots and the protocol.

reports/report.md links its plots (reports/plots/*.png); reports/report.html is
the same text rendered from the markdown with every image embedded, so it can
be mailed or attached as one file.
"""

import base64
import html
import re
from pathlib import Path

import markdown
import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402

from tasks.common.arms import baseline_arm  # noqa: E402
from tasks.common.curves import validation_curve  # noqa: E402
from tasks.common.files import atomic_path, write_text_atomic  # noqa: E402
from tasks.common.paths import REPORTS_DIR  # noqa: E402
from tasks.common.results import Interval, Metrics, Scaling, SizeComparison, SizeScore  # noqa: E402
from tasks.common.stats import levels  # noqa: E402
from tasks.common.times import measured_seconds  # noqa: E402


def literal(name: str) -> str:
    """A class name as markdown text, shown as it is: never read as emphasis (`_a_`), code or HTML."""
    return re.sub(r"([\\`*_\[\]|])", r"\\\1", html.escape(name, quote=False))


def percent(value: float) -> str:
    return f"{100 * value:.1f}%"


def interval(ci: Interval | None, signed: bool = False) -> str:
    if ci is None:
        return "n/a (one seed)"
    template = "{:+.1f}" if signed else "{:.1f}"
    return " to ".join(template.format(100 * bound) for bound in ci)


def p_text(p_value: float | None) -> str:
    return "n/a" if p_value is None else f"{p_value:.3g}"


def verdict_table(metrics: Metrics) -> str:
    """The table printed by `make run` and shown first in the report and in the Prefect UI."""
    level = f"{100 * metrics.confidence:g}%"
    baseline = baseline_arm(list(metrics.arms))
    lines = [
        (
            f"| arm | images per epoch | mean test accuracy | {level} CI | runs | vs {baseline} (points) "
            f"| {level} CI | p-value |"
        ),
        "|---|---|---|---|---|---|---|---|",
    ]
    for arm, result in metrics.arms.items():
        accuracy = result.test_accuracy
        comparison = metrics.comparisons.get(arm) if arm != baseline else None
        versus = (
            [
                f"{100 * comparison.delta_mean:+.1f}",
                interval(comparison.ci95, signed=True),
                p_text(comparison.p_value),
            ]
            if comparison
            else ["(baseline)" if arm == baseline else "(see below)", "", ""]
        )
        runs = ", ".join(percent(run) for run in accuracy.runs)
        budget = result.budget.presentations_per_epoch
        cells = [arm, str(budget), percent(accuracy.mean), interval(accuracy.ci95), runs, *versus]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def scores_table(metrics: Metrics) -> str:
    classes = metrics.dataset.classes
    first = next(iter(metrics.arms.values()))
    names = [name for name in ("balanced_accuracy", "macro_f1", "roc_auc") if getattr(first, name) is not None]
    lines = ["| arm | " + " | ".join(names) + " | " + " | ".join(f"recall {literal(name)}" for name in classes) + " |"]
    lines.append("|---" * (1 + len(names) + len(classes)) + "|")
    for arm, result in metrics.arms.items():
        scores = [getattr(result, name) for name in names]
        cells = [f"{percent(score.mean)} ({interval(score.ci95)})" for score in scores]
        cells += [percent(result.per_class_recall[name]) for name in classes]
        lines.append(f"| {arm} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def comparisons_table(metrics: Metrics) -> str:
    level, equivalence_level = levels(metrics.confidence)
    lines = [
        (
            f"| comparison | verdict | difference (points) | {level} CI | paired t p | Holm-adjusted p "
            f"| {equivalence_level} CI | TOST p | seeds needed | McNemar: only treated right / only baseline right "
            "| McNemar p |"
        ),
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for comparison in metrics.comparisons.values():
        mcnemar = comparison.mcnemar
        needed = "" if comparison.seeds_needed is None else f"about {comparison.seeds_needed}"
        cells = [
            f"{comparison.arm} vs {comparison.baseline}",
            comparison.verdict_kind,
            f"{100 * comparison.delta_mean:+.1f}",
            interval(comparison.ci95, signed=True),
            p_text(comparison.p_value),
            p_text(comparison.p_value_holm),
            interval(comparison.ci90, signed=True),
            p_text(comparison.tost_p),
            needed,
            f"{mcnemar.treated_only_correct} / {mcnemar.baseline_only_correct}",
            p_text(mcnemar.p_value),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def save_figure(figure, path: Path) -> None:
    with atomic_path(path) as temporary:
        figure.savefig(temporary, format="png", dpi=100, metadata={"Software": None})
    plt.close(figure)


def plot_accuracy(metrics: Metrics, path: Path) -> None:
    figure, axes = plt.subplots(figsize=(6, 3.5))
    for position, result in enumerate(metrics.arms.values()):
        accuracy = result.test_accuracy
        axes.scatter([position] * len(accuracy.runs), [100 * run for run in accuracy.runs], color="grey", zorder=2)
        low, high = accuracy.ci95 or (accuracy.mean, accuracy.mean)
        axes.errorbar(
            position + 0.15,
            100 * accuracy.mean,
            yerr=[[100 * (accuracy.mean - low)], [100 * (high - accuracy.mean)]],
            fmt="o",
            capsize=6,
        )
    axes.set_xticks(range(len(metrics.arms)), list(metrics.arms))
    axes.set_ylabel("test accuracy (%)")
    axes.set_title("Each seed (grey) and the mean with its confidence interval")
    save_figure(figure, path)


def plot_confusion(metrics: Metrics, path: Path) -> None:
    arms = metrics.arms
    figure, axes = plt.subplots(1, len(arms), figsize=(3.6 * len(arms), 3.4), squeeze=False)
    for axis, (arm, result) in zip(axes[0], arms.items()):
        matrix, labels = result.confusion_matrix.counts, result.confusion_matrix.labels
        axis.imshow(matrix, cmap="Blues")
        for row, counts in enumerate(matrix):
            for column, count in enumerate(counts):
                axis.text(column, row, str(count), ha="center", va="center")
        axis.set_xticks(range(len(labels)), labels, rotation=45)
        axis.set_yticks(range(len(labels)), labels)
        axis.set_xlabel("predicted")
        axis.set_ylabel("actual")
        axis.set_title(f"{arm} (all seeds)")
    figure.tight_layout()
    save_figure(figure, path)


def plot_learning_curves(metrics: Metrics, live_dir: Path, path: Path) -> None:
    figure, axes = plt.subplots(figsize=(6, 3.5))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for number, (arm, result) in enumerate(metrics.arms.items()):
        for seed in result.test_accuracy.seeds:
            epochs, accuracy = zip(*validation_curve(live_dir, arm, seed))
            label = arm if seed == result.test_accuracy.seeds[0] else None
            axes.plot(epochs, [100 * value for value in accuracy], color=colours[number % len(colours)], label=label)
    axes.set_xlabel("epoch")
    axes.set_ylabel("validation accuracy (%)")
    axes.legend()
    save_figure(figure, path)


def policy_choice_text(metrics: Metrics) -> str:
    """The compared policy chosen on validation and its test verdict."""
    choice = metrics.policy_choice
    if not choice:
        return ""
    chosen, validation = choice.chosen, choice.validation_accuracy
    others = ", ".join(f"{arm} {percent(value)}" for arm, value in validation.items() if arm != chosen)
    return (
        f"**Best policy, chosen on validation: {chosen}** (mean validation accuracy {percent(validation[chosen])}"
        f"{f'; {others}' if others else ''}). On test: {metrics.comparisons[chosen].verdict}\n"
    )


def validation_protocol(metrics: Metrics) -> str:
    """What the validation split decides: the epoch each run keeps (best_val), the compared policy, or nothing."""
    uses = []
    if metrics.checkpoint == "best_val":
        uses.append("picks the epoch whose weights each run keeps (train.checkpoint: best_val)")
    if metrics.policy_choice:
        policies = ", ".join(metrics.policy_choice.validation_accuracy)
        uses.append(
            f"ranks the compared policies ({policies}) by the mean validation accuracy of their kept models "
            "over seeds, and names the best"
        )
    if not uses:
        return "only feeds the learning curves; nothing is chosen on it."
    return f"{' and '.join(uses)}; test accuracy plays no part in the choice."


def checkpoint_text(metrics: Metrics) -> str:
    """Which epoch's weights each run kept, per arm and seed."""
    first = next(iter(metrics.arms.values()))
    if metrics.checkpoint == "last":
        return f"Each run keeps its final epoch's weights (train.checkpoint: last, epoch {first.budget.epochs})."
    seeds = ", ".join(map(str, first.test_accuracy.seeds))
    kept = "; ".join(
        f"{arm} {', '.join(map(str, result.budget.chosen_epochs))}" for arm, result in metrics.arms.items()
    )
    return (
        "Each run keeps the weights of its best validation epoch (train.checkpoint: best_val); "
        f"epochs kept, seeds {seeds}: {kept}."
    )


def isolation_text(metrics: Metrics) -> str:
    """Which comparison tells augmentation from extra training, when the repeated arm ran."""
    if "augmented-vs-repeated" not in metrics.comparisons:
        return ""
    per_epoch = {arm: result.budget.presentations_per_epoch for arm, result in metrics.arms.items()}
    versus_original = (
        " augmented vs original also differs in training steps "
        f"({per_epoch['augmented']} against {per_epoch['original']} images per epoch), "
        "so it cannot tell augmentation from extra training."
        if "original" in per_epoch
        else ""
    )
    return (
        f"**augmented vs repeated isolates augmentation**: both show {per_epoch['augmented']} images per epoch "
        "for as many epochs, so they take the same training steps, and repeated shows the originals untransformed."
        f"{versus_original}\n"
    )


def band(axes, points: list[SizeScore] | list[SizeComparison], value: str, label: str, color: str) -> None:
    """A line through the means and, where seeds allow an interval, its confidence band."""
    sizes = [point.images_per_class for point in points]
    axes.plot(sizes, [100 * getattr(point, value) for point in points], marker="o", label=label, color=color)
    if all(point.ci95 for point in points):
        low, high = zip(*(point.ci95 for point in points))
        axes.fill_between(
            sizes, [100 * bound for bound in low], [100 * bound for bound in high], color=color, alpha=0.2
        )


def plot_scaling(scaling: Scaling, path: Path) -> None:
    """The scaling study's figure: test accuracy against size per arm, each arm's gain over original, and, when
    the study holds one, each comparison that isolates augmentation (augmented vs repeated: the same training
    steps, transformed or not), each with its confidence band and the equivalence band."""
    isolating = scaling.isolating
    figure, panels = plt.subplots(1, 3 if isolating else 2, figsize=(16 if isolating else 11, 4))
    left, right, *third = panels
    colors = {arm: f"C{place}" for place, arm in enumerate(scaling.test_accuracy)}  # an arm's colour in every panel
    for arm, points in scaling.test_accuracy.items():
        band(left, points, "mean", arm, colors[arm])
    for arm, points in scaling.gain_over_original.items():
        band(right, points, "delta_mean", f"{arm} - original", colors[arm])
    for key, points in isolating.items():
        treated, control = key.split("-vs-")
        band(third[0], points, "delta_mean", f"{treated} - {control}", colors[treated])
    margin = 100 * scaling.equivalence_margin
    equivalence = f"±{margin:.1f} points: equivalent if the {levels(scaling.confidence)[1]} CI lies inside"
    labels = [(left, "mean test accuracy (%)"), (right, "gain over original (points)")]
    labels += [(axes, "gain isolating augmentation (points)") for axes in third]
    for axes, label in labels:
        if axes is not left:
            axes.axhline(0, color="grey", linewidth=1)
            axes.axhspan(-margin, margin, color="grey", alpha=0.15, label=equivalence)
        axes.set_xscale("log")
        axes.set_xticks(scaling.sizes, [str(size) for size in scaling.sizes], minor=False)
        axes.minorticks_off()
        axes.set_xlabel("training images per class")
        axes.set_ylabel(label)
        axes.legend()
    for axes in third:
        axes.set_title("arms that take the same training steps", fontsize="medium")
    level = f"{100 * scaling.confidence:g}%"
    figure.suptitle(f"Mean over {len(scaling.seeds)} seeds, shaded: {level} confidence interval")
    figure.tight_layout()
    save_figure(figure, path)


def report_markdown(metrics: Metrics) -> str:
    dataset = metrics.dataset
    verdicts = "\n".join(f"- {comparison.verdict}" for comparison in metrics.comparisons.values())
    count = len(metrics.comparisons)
    level, equivalence_level = levels(metrics.confidence)
    alpha, margin = f"{1 - metrics.confidence:.2g}", f"{100 * metrics.equivalence_margin:.1f}"
    choice = policy_choice_text(metrics)
    classes = ", ".join(map(literal, dataset.classes))
    return f"""# Does augmentation help?

{verdicts}

{isolation_text(metrics)}
{choice}

{verdict_table(metrics)}

![Test accuracy per arm](plots/accuracy.png)

## Comparisons

{comparisons_table(metrics)}

{count} comparison{"s" if count > 1 else ""} made. Each verdict is one of four. *improves* or *hurts*: the
paired difference's {level} interval excludes 0 and its paired t-test p-value, Holm-corrected when there is more
than one comparison, is under {alpha}. *equivalent*: otherwise, if its {equivalence_level} interval lies strictly inside
±{margin} points, which is two one-sided t-tests at {alpha} (TOST p under {alpha}); this test is not corrected for the
number of comparisons. *inconclusive*: neither. For an inconclusive comparison, *seeds needed* estimates how many
seeds in all would decide it if the mean and spread of the paired differences stayed as this run's seeds show
them: enough for the {level} interval to exclude 0 under Holm's correction whatever the other comparisons give,
or for the {equivalence_level} interval to fit inside ±{margin} points, whichever comes first: an estimate from this
run's seeds, whose spread is itself uncertain. The training time those seeds would take, at this run's measured
times, is left out of this file so that it stays the same from run to run: `python -m tasks.evaluate --show` (the end
of `make run`) prints it, and the copy of this report in a Prefect run's artifacts adds it as a last section.
McNemar's exact test uses every test image of every seed, paired by image and seed; it treats
images as the unit and ignores seed-to-seed variation, so the verdicts rest on the seed-level intervals.

## Other scores (mean over seeds, with confidence interval)

{scores_table(metrics)}

![Confusion matrices](plots/confusion.png)

## Training

{checkpoint_text(metrics)}

![Validation accuracy per epoch](plots/learning_curves.png)

![Augmentation preview: originals and their copies](augment_preview.png)

## Protocol

- Each arm trains the same CNN once per seed; the seed fixes the initialisation, the data order and, where the
  source is subsampled, the training subset, all shared by the arms of that seed, so arms are compared seed by seed.
- Training images: {dataset.train} originals per seed; the augmented arm adds {dataset.augmented} stored copies; the
  online arm, where run, draws as many transformed images on the fly each epoch, and the repeated arm, where run,
  shows each original 1 + copies times as it is, so all three see the same number of images per epoch for the same
  number of epochs. Each compared policy's arm stores as many copies, from the same augmentation seed.
- Validation ({dataset.val} images, the same for every seed) {validation_protocol(metrics)}
- Every model is scored exactly once on the test split ({dataset.test} images of {classes}), after all training.
- Intervals are two-sided t-intervals over seeds at {100 * metrics.confidence:g}%.
"""


def embed_images(html: str, folder: Path) -> str:
    """Replace every relative <img src> by a data: URI of the file, so the page stands alone."""

    def inline(match: re.Match) -> str:
        data = base64.b64encode((folder / match.group(1)).read_bytes()).decode()
        return f'src="data:image/png;base64,{data}"'

    return re.sub(r'src="([^":]+\.png)"', inline, html)


def report_html(markdown_text: str, folder: Path) -> str:
    body = markdown.markdown(markdown_text, extensions=["tables"])
    style = (
        "body{font-family:sans-serif;max-width:60em;margin:2em auto}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:.2em .5em}img{max-width:100%}"
    )
    return (
        '<!doctype html>\n<html><head><meta charset="utf-8"><title>augflow report</title>'
        f"<style>{style}</style></head>\n<body>\n{embed_images(body, folder)}\n</body></html>\n"
    )


def write_report(metrics: Metrics, reports_dir: Path = REPORTS_DIR) -> None:
    plots = reports_dir / "plots"
    plot_accuracy(metrics, plots / "accuracy.png")
    plot_confusion(metrics, plots / "confusion.png")
    plot_learning_curves(metrics, reports_dir / "train", plots / "learning_curves.png")
    text = report_markdown(metrics)
    write_text_atomic(reports_dir / "report.md", text)
    write_text_atomic(reports_dir / "report.html", report_html(text, reports_dir))


def seed_seconds(metrics: Metrics, models_dir: Path, times_dir: Path) -> float | None:
    """The training time one more seed costs: the mean measured run time of every arm, summed.

    None when an arm has no measured run (every model restored from DVC's cache).
    """
    total = 0.0
    for arm, result in metrics.arms.items():
        seconds = [
            measured_seconds(models_dir / arm / f"seed-{seed}.keras", times_dir) for seed in result.test_accuracy.seeds
        ]
        measured = [value for value in seconds if value is not None]
        if not measured:
            return None
        total += sum(measured) / len(measured)
    return total


def duration(seconds: float) -> str:
    return f"{seconds / 60:.0f} min" if seconds < 5400 else f"{seconds / 3600:.1f} h"


def seeds_needed_lines(metrics: Metrics, per_seed: float | None) -> list[str]:
    """For each inconclusive comparison: the seeds that would decide it and the training time they would add.

    The time is this run's, not evaluate's output: it differs from run to run, the outputs must not.
    """
    lines = []
    for comparison in metrics.comparisons.values():
        needed, seeds = comparison.seeds_needed, len(metrics.arms[comparison.baseline].test_accuracy.seeds)
        if needed is None:
            continue
        cost = (
            "no run of this machine was timed (models restored from DVC's cache), so no time can be given"
            if per_seed is None
            else f"about {duration((needed - seeds) * per_seed)} more training, one run after another, "
            f"at this run's times ({per_seed:.0f} s a seed for all arms)"
        )
        lines.append(
            f"{comparison.arm} vs {comparison.baseline}: about {needed} seeds would decide it "
            f"(an estimate from {seeds}); {cost}."
        )
    return lines


def seeds_needed_section(metrics: Metrics, models_dir: Path, times_dir: Path) -> str:
    """The seeds-needed lines with their training time, as a markdown section to add to a run's report; empty when
    no comparison is inconclusive."""
    lines = seeds_needed_lines(metrics, seed_seconds(metrics, models_dir, times_dir))
    return (
        "\n\n## Seeds needed, at this run's times\n\n" + "\n".join(f"- {line}" for line in lines) + "\n"
        if lines
        else ""
    )
