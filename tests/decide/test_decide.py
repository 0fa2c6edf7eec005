"""make decide's rounds (tasks/decide/rounds.py) around the sequential rule: which seeds each look uses, params.yaml
rewritten with its comments kept, a stop as soon as every comparison is decided or the time budget would be passed,
and the record of every look. Each round here reads accuracies a table holds per seed, written as evaluate writes
them; the real pipeline under make decide is run in test_pipeline.py."""

import json
import shutil

import pytest

from tasks.common.errors import UserError
from tasks.common.params import load_params
from tasks.common.results import Score, write_result
from tasks.decide import rounds
from tasks.decide.sequential import history
from tests.helpers import PROJECT, example_metrics, set_params

# Per-seed test accuracy of three arms: augmented gains a steady 5 points over repeated, repeated ties original.
ACCURACY = {
    "original": [0.80, 0.82, 0.81, 0.79, 0.83, 0.80, 0.82, 0.81, 0.80],
    "repeated": [0.81, 0.81, 0.80, 0.80, 0.82, 0.81, 0.81, 0.82, 0.79],
    "augmented": [0.86, 0.85, 0.86, 0.84, 0.88, 0.85, 0.87, 0.86, 0.85],
}


@pytest.fixture
def project(tmp_path):
    shutil.copy(PROJECT / "params.yaml", tmp_path / "params.yaml")
    return tmp_path


def evaluate_from_table(project, calls: list):
    """What evaluate leaves in reports/metrics.json for the seeds params.yaml lists, from ACCURACY (seed s: entry s)."""

    def run_round() -> None:
        seeds = load_params(project / "params.yaml").train.seeds
        calls.append(list(seeds))
        example = example_metrics()
        template = next(iter(example.arms.values()))
        arms = {}
        for arm, values in ACCURACY.items():
            runs = [values[seed] for seed in seeds]
            accuracy = Score(mean=sum(runs) / len(runs), ci95=None, runs=runs, seeds=seeds)
            arms[arm] = template.model_copy(update={"test_accuracy": accuracy})
        write_result(project / "reports/metrics.json", example.model_copy(update={"arms": arms}))

    return run_round


def test_seeds_come_from_train_seeds_first_then_the_smallest_unused():
    assert rounds.seed_order([4, 0], 5) == [4, 0, 1, 2, 3]
    assert rounds.seed_order([0, 1, 2], 2) == [0, 1]


def test_params_yaml_keeps_its_comments_and_every_other_setting_when_seeds_are_written(project):
    before = (project / "params.yaml").read_text()
    rounds.write_seeds([0, 1, 2, 3, 4, 5], project / "params.yaml")
    after = (project / "params.yaml").read_text()
    changed = [(old, new) for old, new in zip(before.splitlines(), after.splitlines()) if old != new]
    assert len(before.splitlines()) == len(after.splitlines()) and len(changed) == 1
    assert changed[0][1].startswith("  seeds: [0, 1, 2, 3, 4, 5]") and "# one model per arm and seed" in changed[0][1]


def test_rounds_add_seeds_until_every_comparison_is_decided_and_record_each_look(project):
    set_params(
        project,
        decide={
            "comparisons": [["augmented", "repeated"], ["repeated", "original"]],
            "first_seeds": 3,
            "round_seeds": 3,
            "max_seeds": 9,
        },
    )
    calls = []
    record = rounds.decide(project, evaluate_from_table(project, calls), log=lambda line: None)
    design = rounds.design_of(load_params(project / "params.yaml"))
    expected = {
        name: history(design, [ACCURACY[treated][s] - ACCURACY[control][s] for s in range(9)])
        for name, (treated, control) in {
            "augmented vs repeated": ("augmented", "repeated"),
            "repeated vs original": ("repeated", "original"),
        }.items()
    }  # the rule itself, on the seeds in the order they were added
    stop = max(made[-1].seeds for made in expected.values())
    assert calls == [list(range(n)) for n in design.looks if n <= stop]  # one round per look, never past the stop
    assert load_params(project / "params.yaml").train.seeds == list(range(stop))
    assert {name: c["decision"] for name, c in record["comparisons"].items()} == {
        name: made[-1].decision for name, made in expected.items()
    }
    assert record["comparisons"]["augmented vs repeated"]["decision"] == "improves"
    assert [look["seeds"] for look in record["comparisons"]["augmented vs repeated"]["looks"]] == [
        made.seeds for made in expected["augmented vs repeated"]
    ]
    saved = json.loads((project / rounds.DECIDE_JSON).read_text())
    assert saved["seeds"] == list(range(stop)) and saved["design"]["looks"] == [3, 6, 9]
    page = (project / rounds.DECIDE_MD).read_text()
    assert "## augmented vs repeated" in page and "| look | seeds |" in page and record["stopped"] in page


def test_no_round_starts_that_would_end_after_the_time_budget(project, monkeypatch):
    set_params(
        project,
        decide={
            "comparisons": [["repeated", "original"]],
            "first_seeds": 3,
            "round_seeds": 3,
            "max_seeds": 9,
            "max_hours": 1.0,
        },
    )
    clock = iter(range(0, 10**6, 1500))  # every reading of the clock is 25 min after the last
    monkeypatch.setattr(rounds.time, "monotonic", lambda: next(clock))
    calls = []
    record = rounds.decide(project, evaluate_from_table(project, calls), log=lambda line: None)
    assert calls == [[0, 1, 2]]  # a second round would end after the hour
    assert record["stopped"].startswith("Stopped before look 2") and record["seeds"] == [0, 1, 2]
    assert record["comparisons"]["repeated vs original"]["decision"] == "continue"


def test_a_comparison_of_an_arm_that_is_not_trained_is_refused_in_one_sentence(project):
    set_params(project, decide={"comparisons": [["online", "original"]]})
    with pytest.raises(
        UserError, match=r"^params.yaml: decide.comparisons names online, which train.arms does not train: add it"
    ):
        rounds.decide(project, lambda: None)
