"""The article's own layout, dogs_cat/{train,validation}/{cats,dogs}/*.jpg, through the whole pipeline."""

import json

from conftest import TINY_PARAMS, make_project, ran_stages, run
from pictures import class_folders

# Two arms: the pipeline's stages are the same for every arm, and the online arm is tested in test_pipeline.py.
PARAMS = TINY_PARAMS | {"train": TINY_PARAMS["train"] | {"arms": ["original", "augmented"]}}
STAGES = {"ingest", "augment", "evaluate"} | {f"train@{arm}-0" for arm in PARAMS["train"]["arms"]}


def test_the_articles_layout_goes_through_dvc_repro(tmp_path):
    source = tmp_path / "dogs_cat"
    class_folders(source / "train", {"cats": "ellipse", "dogs": "rectangle"}, 30)
    class_folders(source / "validation", {"cats": "ellipse", "dogs": "rectangle"}, 6, first_seed=500)
    (source / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
    ingest = PARAMS["ingest"] | {"source": str(source), "image_size": [32, 32], "min_per_class": 2}
    repo = make_project(tmp_path / "project", PARAMS | {"ingest": ingest})
    output = run(repo, "dvc", "repro").stdout
    assert ran_stages(output) == STAGES
    report = json.loads((repo / "reports/ingest_report.json").read_text())
    assert report["files"] == 73 and report["ingested"] == 72 and report["reasons"] == {"hidden": 1}
    assert sum(report["splits"]["val"].values()) == 12  # validation/ is the val split
    metrics = json.loads((repo / "reports/metrics.json").read_text())
    assert metrics["dataset"]["classes"] == ["cats", "dogs"]
    assert metrics["dataset"]["train"] + metrics["dataset"]["test"] == 60
    assert "up to date" in run(repo, "dvc", "status").stdout
