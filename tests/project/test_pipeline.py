"""The pipeline under real `dvc repro` and `make run`'s parallel path: outputs, schema, what reruns when.

The tests share one tiny project after a run of the parallel path (conftest.py's `reproduced`) and
one grown from it to two seeds (`two_seeds`), each built once for the file; a test that changes a
project changes a copy of it, so every test starts from the same state, alone or after the others.
The parallel path (tasks/orchestration/parallel.py, two stages at once) and plain `dvc repro` take
turns, so each is checked against what the other left.
"""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
from collections import Counter

import pytest
import yaml

from tasks.common.files import read_csv
from tasks.common.results import Metrics, result_json
from tasks.common.times import measured_seconds
from tasks.evaluate import stage as evaluate_stage
from tests.helpers import ENV, copy_project, lock_hashes, ran_stages, repro_parallel, run, set_params
from tests.oracle import a_case_holm_decides, assert_metrics_agree

TRAIN_RUNS = {"train@original-0", "train@augmented-0", "train@online-0", "train@repeated-0"}
ARMS = ("original", "augmented", "online", "repeated")
COMPARISONS = {"augmented", "online", "repeated", "online-vs-augmented", "augmented-vs-repeated", "online-vs-repeated"}
EVERY_STAGE = {"ingest", "augment", "evaluate"} | TRAIN_RUNS


@pytest.fixture(scope="module")
def two_seeds(reproduced, tmp_path_factory) -> tuple:
    """A copy of the reproduced project with a second seed added to train.seeds and `make run`'s parallel path run
    again; with that run's output."""
    repo = copy_project(reproduced[0], tmp_path_factory.mktemp("two-seeds") / "project")
    set_params(repo, train={"seeds": [0, 1]})
    return repo, repro_parallel(repo)


def test_first_repro_runs_every_stage_and_writes_the_agreed_metrics(reproduced):
    repo, output = reproduced
    assert ran_stages(output) == EVERY_STAGE
    written = (repo / "reports/metrics.json").read_text()
    assert result_json(Metrics.model_validate_json(written)) == written  # the model reads and writes back every key
    metrics = json.loads(written)
    for arm in ARMS:
        accuracy = metrics["arms"][arm]["test_accuracy"]
        assert len(accuracy["runs"]) == 1 and 0 <= accuracy["runs"][0] <= 1
        assert accuracy["mean"] == accuracy["runs"][0] and accuracy["ci95"] is None  # one seed: no interval
    comparison = metrics["comparison"]
    assert set(comparison) >= {"delta_mean", "ci95", "p_value", "test"}
    runs = {arm: metrics["arms"][arm]["test_accuracy"]["runs"][0] for arm in ("original", "augmented")}
    assert abs(comparison["delta_mean"] - (runs["augmented"] - runs["original"])) < 1e-12
    assert "no confidence interval" in comparison["verdict"]
    assert set(metrics["comparisons"]) == COMPARISONS
    for each in metrics["comparisons"].values():
        assert each["comparisons"] == 6 and each["p_value_holm"] is None  # one seed: no t-test
        assert each["verdict_kind"] == "inconclusive" and each["tost_p"] is each["ci90"] is each["seeds_needed"] is None
        mcnemar = each["mcnemar"]
        assert (
            0 <= mcnemar["treated_only_correct"] + mcnemar["baseline_only_correct"] <= 40
            and 0 <= mcnemar["p_value"] <= 1
        )
    for arm in ARMS:
        result = metrics["arms"][arm]
        assert set(result) >= {"balanced_accuracy", "macro_f1", "roc_auc", "per_class_recall", "confusion_matrix"}
        assert sum(map(sum, result["confusion_matrix"]["counts"])) == 40
    html = (repo / "reports/report.html").read_text()
    assert comparison["verdict"] in html and html.count("data:image/png;base64,") == 4 and 'src="plots/' not in html
    budgets = {arm: metrics["arms"][arm]["budget"]["presentations_per_epoch"] for arm in ARMS}
    assert budgets == {
        "original": 24,
        "augmented": 72,
        "online": 72,
        "repeated": 72,
    }  # as many images as augmented stores
    assert (
        all(metrics["arms"][arm]["budget"]["chosen_epochs"] == [1] for arm in ARMS) and metrics["checkpoint"] == "last"
    )
    report = (repo / "reports/report.md").read_text()
    assert "augmented vs repeated isolates augmentation" in report and "keeps its final epoch's weights" in report
    assert_repeated_lists_each_original(repo, times=1 + 2)
    assert metrics["dataset"] == {"train": 24, "val": 12, "test": 40, "augmented": 48, "classes": ["coat", "pullover"]}
    assert comparison["verdict"] in (repo / "reports/report.md").read_text()
    assert (repo / "reports/augment_preview.png").stat().st_size > 0
    assert len(list((repo / "data/augmented").rglob("*.png"))) == 24  # one per training image, holding its 2 copies
    for arm in ARMS:
        assert (repo / f"models/{arm}/seed-0.keras").is_file()
        assert measured_seconds(repo / f"models/{arm}/seed-0.keras", repo / ".augflow/times") > 0
        assert (repo / f"reports/train/{arm}-seed-0/plots/metrics/eval/accuracy.tsv").is_file()
        assert len((repo / f"reports/predictions/{arm}.csv").read_text().splitlines()) == 1 + 40
    assert_metrics_agree(repo)  # every number, recomputed from the predictions without augflow's code


def assert_repeated_lists_each_original(repo, times: int) -> None:
    """The repeated arm's set: every original of the seed, untransformed, listed `times` times and nothing else."""
    originals = read_csv(repo / "data/sets/original/seed-0.csv")
    assert Counter(tuple(row.items()) for row in read_csv(repo / "data/sets/repeated/seed-0.csv")) == {
        tuple(row.items()): times for row in originals
    }


def test_dvc_metrics_show_lists_the_headline_numbers_and_metrics_json_keeps_its_keys(reproduced):
    repo, _ = reproduced
    metrics = json.loads((repo / "reports/metrics.json").read_text())
    assert set(metrics) == {
        "arms",
        "comparison",
        "comparisons",
        "confidence",
        "equivalence_margin",
        "dataset",
        "policy_choice",
        "checkpoint",
    }
    shown = json.loads(run(repo, "dvc", "metrics", "show", "--json").stdout)[""]["data"]
    assert list(shown) == ["reports/headline.json"]  # the full metrics.json is a plain output, not a DVC metric
    headline = json.loads((repo / "reports/headline.json").read_text())
    accuracy = {arm: metrics["arms"][arm]["test_accuracy"]["mean"] for arm in ARMS}
    assert shown["reports/headline.json"]["data"] == {"accuracy": accuracy} | {
        key: {"delta": each["delta_mean"], "verdict_kind": "inconclusive"}
        for key, each in metrics["comparisons"].items()
    }
    for key, comparison in metrics["comparisons"].items():  # one seed: no interval, no p-value; DVC leaves out nulls
        assert headline[key] == {
            "delta": comparison["delta_mean"],
            "ci_low": None,
            "ci_high": None,
            "p_value": None,
            "p_holm": None,
            "verdict_kind": "inconclusive",
        }
    table = run(repo, "dvc", "metrics", "show").stdout
    assert "accuracy.augmented" in table and "online-vs-augmented.delta" in table and "budget" not in table


def test_make_runs_last_step_prints_every_verdict_without_starting_tensorflow(reproduced):
    """`python -m tasks.evaluate --show` reads metrics.json alone: Keras and TensorFlow load only where models are
    scored."""
    repo, _ = reproduced
    show = (
        "import runpy, sys; sys.argv[1:] = ['--show']; runpy.run_module('tasks.evaluate', run_name='__main__'); "
        "print('tensorflow' in sys.modules)"
    )
    shown = run(repo, sys.executable, "-c", show).stdout
    comparisons = json.loads((repo / "reports/metrics.json").read_text())["comparisons"]
    assert all(comparison["verdict"] in shown for comparison in comparisons.values()) and shown.endswith("\nFalse\n")


def test_dvc_plots_show_draws_every_declared_plot_without_warnings(reproduced):
    repo, _ = reproduced
    shown = run(repo, "dvc", "plots", "show")
    assert "WARNING" not in shown.stdout + shown.stderr
    page = (repo / "dvc_plots/index.html").read_text()
    assert "learning_curves.png" in page and "accuracy.png" in page
    assert all(f"reports/predictions/{arm}.csv" in page for arm in ARMS)


def evaluate_here(folder, monkeypatch, capsys) -> str:
    """The evaluate stage's `main` in this process (TensorFlow already started), on folder's params and models; what
    it printed. The stage's own process runs in every `dvc repro` here."""
    monkeypatch.chdir(folder)
    monkeypatch.setattr(sys, "argv", ["evaluate"])
    capsys.readouterr()
    evaluate_stage.main()
    return capsys.readouterr().out


def test_every_arm_list_the_schema_accepts_ends_in_a_verdict_between_arms_that_ran(
    reproduced, tmp_path, monkeypatch, capsys
):
    """Without original the first arm is the baseline, and a pair is compared once: evaluate alone, on the trained
    models."""
    repo, _ = reproduced
    copy = tmp_path / "arms"
    shutil.copytree(repo, copy, ignore=shutil.ignore_patterns(".dvc", ".git"))
    for arms, expected in (
        (["augmented", "repeated"], {"augmented-vs-repeated": ("augmented", "repeated")}),
        (["repeated", "original"], {"repeated": ("repeated", "original")}),
    ):
        set_params(copy, train={"arms": arms})
        shown = evaluate_here(copy, monkeypatch, capsys)
        comparisons = json.loads((copy / "reports/metrics.json").read_text())["comparisons"]
        assert {key: (c["arm"], c["baseline"]) for key, c in comparisons.items()} == expected
        assert all(c["verdict"] in shown for c in comparisons.values())
        assert f"| vs {arms[0] if 'original' not in arms else 'original'} (points) |" in shown


def test_second_repro_reruns_nothing_and_status_is_clean(reproduced):
    repo, _ = reproduced
    output = run(repo, "dvc", "repro").stdout
    assert ran_stages(output) == set()
    assert output.count("didn't change, skipping") == len(EVERY_STAGE)
    assert "up to date" in run(repo, "dvc", "status").stdout


def test_a_second_make_run_stops_at_once_and_the_first_ends_as_an_uninterrupted_run(reproduced, tmp_path):
    repo, _ = reproduced
    uninterrupted = lock_hashes(repo)
    copy = copy_project(repo, tmp_path / "project")
    model = "models/original/seed-0.keras"
    (copy / model).unlink()
    cached = copy / ".dvc/cache/files/md5" / uninterrupted[model][:2] / uninterrupted[model][2:]
    cached.unlink()  # nothing to restore the model from: the first run must really train
    command = [sys.executable, "-m", "tasks.orchestration.parallel", "--jobs", "1"]
    first = subprocess.Popen(
        command, cwd=copy, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
    )
    output = ""
    while "Running stage 'train@original-0'" not in output:  # DVC is running the stage's command
        line = first.stdout.readline()
        assert line, f"the first run ended before training:\n{output}"
        output += line
    os.killpg(first.pid, signal.SIGSTOP)  # held mid-stage, for as long as the second takes
    try:
        second = subprocess.run(command, cwd=copy, env=ENV, capture_output=True, text=True)
    finally:
        os.killpg(first.pid, signal.SIGCONT)
    output += first.communicate()[0]
    assert second.returncode == 2, second.stderr
    assert re.fullmatch(
        rf"augflow: {re.escape(str(copy))} is busy: python -m tasks\.orchestration\.parallel --jobs 1 "
        rf"\(pid {first.pid}\) has been running in it since "
        r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC; wait for that run to end \(or stop it\), then start this one again\.\n",
        second.stderr,
    ), second.stderr
    assert first.returncode == 0, output
    assert ran_stages(output) == {"train@original-0"}
    assert lock_hashes(copy) == uninterrupted


def test_changing_the_checkpoint_epochs_or_a_model_setting_marks_only_the_training_runs(reproduced, tmp_path):
    """What `dvc repro` would rerun, from `dvc status`: the training runs, whose new models then rerun evaluate.

    The flow's tests (test_flow.py) and the killed flow (test_faults.py) rerun training on a changed
    `train.epochs` for real; here the dependency alone is checked, which a real run would only repeat.
    A model's settings are one group: a setting no stage names by itself (dense_units) still counts.
    """
    repo = copy_project(reproduced[0], tmp_path / "project")
    model = yaml.safe_load((repo / "params.yaml").read_text())["train"]["model"]
    for key, value, before, marked in (
        ("checkpoint", "best_val", "last", TRAIN_RUNS),
        ("epochs", 2, 1, TRAIN_RUNS | {"evaluate"}),
        ("model", model | {"dense_units": [8]}, model, TRAIN_RUNS),
    ):
        set_params(repo, train={key: value})  # evaluate reads train.epochs itself: the budget it reports
        changed = json.loads(run(repo, "dvc", "status", "--json").stdout)
        assert changed == dict.fromkeys(marked, [{"changed deps": {"params.yaml": {f"train.{key}": "modified"}}}])
        set_params(repo, train={key: before})
    assert "up to date" in run(repo, "dvc", "status").stdout


def test_changing_copies_reruns_augment_its_training_runs_and_evaluation(reproduced, tmp_path):
    """augment reruns, and its new sets leave out of date exactly the training runs that read them, and evaluate.
    The flow's test (test_flow.py) reruns such training runs and evaluate for real; here DVC's status says which
    `dvc repro` would rerun."""
    repo = copy_project(reproduced[0], tmp_path / "project")
    before = read_csv(repo / "data/sets/augmented/seed-0.csv")
    set_params(repo, augment={"copies": 3})
    assert set(json.loads(run(repo, "dvc", "status", "--json").stdout)) == {"augment"}  # the setting is its alone
    output = run(repo, "dvc", "repro", "--single-item", "augment").stdout
    assert ran_stages(output) == {"augment"}
    stale = {"train@augmented-0", "train@online-0", "train@repeated-0", "evaluate"}
    assert set(json.loads(run(repo, "dvc", "status", "--json").stdout)) == stale
    assert len(list((repo / "data/augmented").rglob("*.png"))) == 24
    assert_repeated_lists_each_original(repo, times=1 + 3)
    # the output persists across the rerun: each strip keeps its two copies' pixels, only the third ones are made
    assert "augment: 72 copies of 24 training images in data/augmented (24 made, 48 kept)" in output
    after = {row["id"]: row["sha256"] for row in read_csv(repo / "data/sets/augmented/seed-0.csv")}
    assert all(after[row["id"]] == row["sha256"] for row in before) and len(after) == 24 + 72


def test_changing_a_stage_module_reruns_that_stage_and_what_follows(reproduced, tmp_path):
    """What `dvc repro` would rerun, from `dvc status`: a change to the copy code reruns augment for real
    (test_a_docstring_edit_in_the_copy_code_reruns_augment_but_rewrites_no_copy)."""
    repo = copy_project(reproduced[0], tmp_path / "project")
    module = repo / "tasks/evaluate/stage.py"
    module.write_text(module.read_text() + "\n# a comment changes the file's hash\n")
    changed = json.loads(run(repo, "dvc", "status", "--json").stdout)
    assert changed == {"evaluate": [{"changed deps": {"tasks/evaluate/stage.py": "modified"}}]}


def test_adding_a_seed_draws_its_subset_trains_only_that_seed_and_gives_intervals(reproduced, two_seeds):
    repo, output = two_seeds
    before = (reproduced[0] / "data/sets/original/seed-0.csv").read_text()
    # ingest draws seed 1's training subset and augment copies its new images; seed 0's runs keep their sets
    expected = {"ingest", "augment", "evaluate"} | {f"train@{arm}-1" for arm in ARMS}
    assert ran_stages(output) == expected
    subsets = [{row["id"] for row in read_csv(repo / f"data/sets/original/seed-{seed}.csv")} for seed in (0, 1)]
    assert (repo / "data/sets/original/seed-0.csv").read_text() == before and subsets[0] != subsets[1]
    assert (
        len(subsets[1]) == 24 and {row["id"] for row in read_csv(repo / "data/sets/augmented/seed-1.csv")} > subsets[1]
    )
    written = (repo / "reports/metrics.json").read_text()
    assert result_json(Metrics.model_validate_json(written)) == written  # the model reads and writes back every key
    metrics = json.loads(written)
    for arm in ARMS:
        accuracy = metrics["arms"][arm]["test_accuracy"]
        assert len(accuracy["runs"]) == 2 and accuracy["mean"] == sum(accuracy["runs"]) / 2
        assert accuracy["ci95"][0] <= accuracy["mean"] <= accuracy["ci95"][1]
    original, augmented = (metrics["arms"][arm]["test_accuracy"]["runs"] for arm in ("original", "augmented"))
    comparison = metrics["comparison"]
    assert abs(comparison["delta_mean"] - sum(a - o for a, o in zip(augmented, original)) / 2) < 1e-12
    assert comparison["ci95"][0] <= comparison["delta_mean"] <= comparison["ci95"][1]
    assert 0 <= comparison["p_value"] <= 1 and comparison["test"] == "paired t-test over seeds"
    assert comparison["ci90"][0] <= comparison["delta_mean"] <= comparison["ci90"][1] and 0 <= comparison["tost_p"] <= 1
    assert comparison["verdict_kind"] in {"improves", "hurts", "equivalent", "inconclusive"}
    assert (comparison["seeds_needed"] is None) == (comparison["verdict_kind"] != "inconclusive")
    shown = json.loads(run(repo, "dvc", "metrics", "show", "--json").stdout)[""]["data"]["reports/headline.json"][
        "data"
    ]
    assert [shown["augmented"]["ci_low"], shown["augmented"]["ci_high"]] == comparison["ci95"] and shown["augmented"][
        "p_value"
    ] == comparison["p_value"]


def test_every_number_evaluate_reports_matches_an_independent_recomputation_from_the_predictions(
    two_seeds, tmp_path, monkeypatch, capsys
):
    """tests/oracle.py recomputes metrics.json and headline.json from reports/predictions/, the test split and
    params.yaml with scipy, statsmodels and scikit-learn, by the rules of docs/verdict.md: every accuracy, score
    and interval, paired test, Holm-adjusted p-value, TOST, McNemar, seeds needed and verdict.

    Then evaluate again, on a copy (no training), with models of three different accuracies put in some arms'
    places and at a confidence level at which Holm's correction decides a verdict (a comparison significant on
    its own p-value, not on its adjusted one), beside a gain equal on both seeds: two seeds of the tiny params
    rarely give either.
    """
    repo, _ = two_seeds
    assert_metrics_agree(repo)
    case = a_case_holm_decides(repo)
    assert case, (
        "the run's models take fewer than three accuracies: no second case where Holm's correction decides can be made"
    )
    placed, confidence = case
    copy = copy_project(repo, tmp_path / "project")
    for (arm, seed), (source, source_seed) in placed.items():
        (
            copy / f"models/{arm}/seed-{seed}.keras"
        ).unlink()  # not written through, should DVC have linked it to its cache
        shutil.copy(repo / f"models/{source}/seed-{source_seed}.keras", copy / f"models/{arm}/seed-{seed}.keras")
    set_params(copy, evaluate={"confidence": confidence})
    evaluate_here(copy, monkeypatch, capsys)
    assert_metrics_agree(copy)


def test_deleting_augmented_images_reproduces_the_same_hashes(reproduced, tmp_path):
    repo = copy_project(reproduced[0], tmp_path / "project")
    before = lock_hashes(repo)
    shutil.rmtree(repo / "data/augmented")
    # Force a real regeneration: plain `dvc repro` would restore the folder from DVC's cache.
    assert ran_stages(run(repo, "dvc", "repro", "--force", "--single-item", "augment").stdout) == {"augment"}
    assert lock_hashes(repo) == before
    assert ran_stages(run(repo, "dvc", "repro").stdout) == set()  # identical copies: nothing downstream reruns


def test_each_compared_policy_is_an_arm_of_its_own_chosen_on_val_and_rerun_alone(reproduced, tmp_path):
    """On the one-seed project; a second seed's sets and intervals are
    test_adding_a_seed_draws_its_subset_trains_only_that_seed_and_gives_intervals's."""
    repo = copy_project(reproduced[0], tmp_path / "project")
    set_params(repo, evaluate={"compare_policies": ["flip"]})
    expected = {"augment-policy@flip", "train-policy@flip-0", "evaluate"}
    assert ran_stages(repro_parallel(repo)) == expected
    metrics = json.loads((repo / "reports/metrics.json").read_text())
    assert set(metrics["comparisons"]) == COMPARISONS | {"flip"}
    flip = metrics["comparisons"]["flip"]
    assert (
        flip["baseline"] == "original"
        and flip["comparisons"] == 7
        and set(flip) >= {"delta_mean", "ci95", "p_value", "p_value_holm", "mcnemar"}
    )
    assert metrics["policy_choice"]["chosen"] == "flip" and set(metrics["policy_choice"]["validation_accuracy"]) == {
        "flip"
    }
    assert_metrics_agree(repo)  # the policy's arm too, in a family of 7 comparisons
    for seed in (0,):  # the same originals as every arm of the seed, plus as many copies as the augmented arm
        rows = read_csv(repo / f"data/sets/flip/seed-{seed}.csv")
        originals = {row["id"] for row in read_csv(repo / f"data/sets/original/seed-{seed}.csv")}
        assert originals <= {row["id"] for row in rows} and len(rows) == 24 * (1 + 2)  # two copies each
        assert all(row["path"].startswith("data/augmented-flip/") for row in rows if row["id"] not in originals)
    assert len((repo / "reports/predictions/flip.csv").read_text().splitlines()) == 1 + 40  # the model scored once
    report = (repo / "reports/report.md").read_text()
    assert "Best policy, chosen on validation: flip" in report and flip["verdict"] in report
    assert "test accuracy plays no part in the choice" in report

    # Another default policy (a bare name): once augment has rerun, exactly the runs that read its sets are out of date,
    # and evaluate; neither the compared flip arm nor repeated depends on it. DVC's status says what a run would rerun
    # (test_changing_copies_reruns_augment_its_training_runs_and_evaluation reruns such runs for real).
    set_params(repo, augment={"policy": "color"})
    assert ran_stages(run(repo, "dvc", "repro", "--single-item", "augment").stdout) == {"augment"}
    stale = {"train@augmented-0", "train@online-0", "evaluate"}
    assert set(json.loads(run(repo, "dvc", "status", "--json").stdout)) == stale


def test_a_docstring_edit_in_the_copy_code_reruns_augment_but_rewrites_no_copy(reproduced, tmp_path):
    """DVC reruns a stage whose code file changed; augment's own check compares the code's syntax, so a docstring or
    comment edit keeps every copy, and a change to what the code does makes them all again."""
    copy = copy_project(reproduced[0], tmp_path / "edited")
    code = copy / "tasks/common/copies.py"
    code.write_text(code.read_text().replace('"""', '"""Edited: ', 1) + "# a comment\n")
    edited = run(copy, "dvc", "repro", "augment").stdout
    assert "Running stage 'augment'" in edited and re.search(r"in data/augmented \(0 made, \d+ kept\)", edited), edited
    code.write_text(code.read_text().replace("words = [seed, ", "words = [seed + 1, "))  # other copies
    changed = run(copy, "dvc", "repro", "augment").stdout
    assert re.search(r"in data/augmented \((\d+) made, 0 kept\)", changed), changed
