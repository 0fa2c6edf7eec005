"""The scaling study (`make study`: its runs two at a time) on tiny sizes, in a real git + DVC copy."""

import json
import sys

from conftest import TINY_PARAMS, make_project, ran_stages, run
from tasks.parallel import pipeline_stages

SIZES = [3, 6]
PARAMS = TINY_PARAMS | {"train": TINY_PARAMS["train"] | {"arms": ["original", "augmented"], "seeds": [0, 1]}, "study": {"sizes": SIZES}}
RUNS = {f"run@{size}-{arm}-{seed}" for size in SIZES for arm in ("original", "augmented") for seed in (0, 1)}


def test_the_study_writes_its_curve_and_stays_out_of_the_main_pipeline(tmp_path):
    repo = make_project(tmp_path, PARAMS)
    study = run(repo, sys.executable, "-m", "tasks.parallel", "--repo", "study", "--jobs", "2").stdout
    assert ran_stages(study) == RUNS | {"scaling"}
    scaling = json.loads((repo / "reports/scaling.json").read_text())
    assert scaling["sizes"] == SIZES and set(scaling["test_accuracy"]) == {"original", "augmented"}
    for size, point in zip(SIZES, scaling["test_accuracy"]["augmented"]):
        run_file = json.loads((repo / f"study/runs/{size}-augmented-1.json").read_text())
        assert run_file["train_images"] == 2 * size and 0 <= run_file["val_accuracy"] <= 1
        assert point["images_per_class"] == size and point["runs"][1] == run_file["test_accuracy"]
        assert point["ci95"][0] <= point["mean"] <= point["ci95"][1]
    for point in scaling["gain_over_original"]["augmented"]:
        original = scaling["test_accuracy"]["original"][SIZES.index(point["images_per_class"])]["runs"]
        augmented = scaling["test_accuracy"]["augmented"][SIZES.index(point["images_per_class"])]["runs"]
        assert abs(point["delta_mean"] - (sum(augmented) - sum(original)) / 2) < 1e-12
    assert (repo / "reports/scaling.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    assert ran_stages(run(repo / "study", "dvc", "repro").stdout) == set()  # as after a serial dvc repro: nothing reruns
    # The main pipeline does not see the study: not in its graph (so not in the Prefect flow), not in its status.
    assert {stage for stage, _ in pipeline_stages(repo)} == {"ingest", "augment", "evaluate"} | {
        f"train@{arm}-{seed}" for arm in ("original", "augmented") for seed in (0, 1)
    }
    status = run(repo, "dvc", "status").stdout
    assert "run@" not in status and "scaling" not in status
