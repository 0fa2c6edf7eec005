"""Training times: kept per model outside DVC's outputs, credited only to the model that run made,
and turned into the extra training time an inconclusive comparison's seeds would take."""

from tasks.common.results import Metrics
from tasks.common.times import measured_seconds, record_seconds
from tasks.evaluate.report import seed_seconds, seeds_needed_lines, seeds_needed_section
from tests.helpers import example_metrics


def test_a_time_belongs_to_the_model_its_run_made(tmp_path):
    model = tmp_path / "models/augmented/seed-0.keras"
    model.parent.mkdir(parents=True)
    model.write_bytes(b"weights")
    assert measured_seconds(model, tmp_path / "times") is None  # never timed here
    record_seconds(model, 61.26, tmp_path / "times")
    assert measured_seconds(model, tmp_path / "times") == 61.3
    model.write_bytes(b"other weights")  # e.g. restored from DVC's cache for other settings
    assert measured_seconds(model, tmp_path / "times") is None


def metrics_with(seeds_needed: int | None) -> Metrics:
    """A run of arms original and augmented over seeds 0, 1 and 2 whose one comparison needs seeds_needed seeds."""
    example = example_metrics()
    assert example.arms["original"].test_accuracy.seeds == [0, 1, 2]
    comparison = example.comparisons["augmented"].model_copy(update={"seeds_needed": seeds_needed})
    arms = {arm: example.arms[arm] for arm in ("original", "augmented")}
    return example.model_copy(update={"arms": arms, "comparisons": {"augmented": comparison}})


def test_one_more_seed_costs_the_mean_run_time_of_every_arm(tmp_path):
    for arm, seconds in (("original", [10, 12, None]), ("augmented", [100, None, 110])):
        for seed, value in enumerate(seconds):
            model = tmp_path / f"models/{arm}/seed-{seed}.keras"
            model.parent.mkdir(parents=True, exist_ok=True)
            model.write_bytes(f"{arm} {seed}".encode())
            if value is not None:
                record_seconds(model, value, tmp_path / "times")
    per_seed = seed_seconds(metrics_with(9), tmp_path / "models", tmp_path / "times")
    assert per_seed == 11 + 105
    assert seeds_needed_lines(metrics_with(9), per_seed) == [
        "augmented vs original: about 9 seeds would decide it (an estimate from 3); about 12 min more training, "
        "one run after another, at this run's times (116 s a seed for all arms)."
    ]
    assert seeds_needed_lines(metrics_with(None), per_seed) == []  # decided: nothing to add
    assert seed_seconds(metrics_with(9), tmp_path / "models", tmp_path / "elsewhere") is None
    assert "no run of this machine was timed" in seeds_needed_lines(metrics_with(9), None)[0]


def test_a_runs_report_gets_the_seeds_needed_section_only_when_a_comparison_is_inconclusive(tmp_path):
    for arm in ("original", "augmented"):
        model = tmp_path / f"models/{arm}/seed-0.keras"
        model.parent.mkdir(parents=True)
        model.write_bytes(arm.encode())
        record_seconds(model, 30, tmp_path / "times")
    section = seeds_needed_section(metrics_with(9), tmp_path / "models", tmp_path / "times")
    assert section == (
        "\n\n## Seeds needed, at this run's times\n\n"
        "- augmented vs original: about 9 seeds would decide it (an estimate from 3); "
        "about 6 min more training, one run after another, at this run's times (60 s a seed for all arms).\n"
    )
    assert seeds_needed_section(metrics_with(None), tmp_path / "models", tmp_path / "times") == ""
