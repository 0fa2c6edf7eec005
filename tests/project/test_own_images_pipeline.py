"""The article's own layout, dogs_cat/{train,validation}/{cats,dogs}/*.jpg, through the whole pipeline, two seeds
each drawing its own half of the training images (ingest.seed_sample), with the augmented copies shared."""

import json
import re
from pathlib import Path

from tasks.common.files import read_csv
from tests.helpers import TINY_PARAMS, make_project, ran_stages, run, set_params
from tests.pictures import class_folders

# Two arms: the pipeline's stages are the same for every arm, and the online arm is tested in test_pipeline.py.
PARAMS = TINY_PARAMS | {"train": TINY_PARAMS["train"] | {"arms": ["original", "augmented"], "seeds": [0, 1]}}
STAGES = {"ingest", "augment", "evaluate"} | {
    f"train@{arm}-{seed}" for arm in PARAMS["train"]["arms"] for seed in (0, 1)
}
COPIES = PARAMS["augment"]["copies"]


def training_set(repo: Path, arm: str, seed: int) -> list[dict]:
    return read_csv(repo / f"data/sets/{arm}/seed-{seed}.csv")


def sources(rows: list[dict]) -> list[str]:
    """The original image each row shows: its own id, or the id of the image it is a copy of (<id>-<copy>)."""
    return sorted(row["id"].split("-")[0] for row in rows)


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
    train = report["splits"]["train"]
    assert sum(train.values()) + sum(report["splits"]["test"].values()) == 60
    metrics = json.loads((repo / "reports/metrics.json").read_text())
    assert metrics["dataset"]["classes"] == ["cats", "dogs"]

    # Each seed trains on its own half of each class (the default ingest.seed_sample: 0.5).
    drawn = {seed: training_set(repo, "original", seed) for seed in (0, 1)}
    for rows in drawn.values():
        assert {label: sum(row["class"] == label for row in rows) for label in train} == {
            label: int(count / 2 + 0.5) for label, count in train.items()
        }
    assert sources(drawn[0]) != sources(drawn[1]) and metrics["dataset"]["train"] == len(drawn[0])
    # An image's copies are made once, whichever seeds draw it, and each seed's sets list only its own images.
    shared = set(sources(drawn[0])) & set(sources(drawn[1]))
    union = set(sources(drawn[0])) | set(sources(drawn[1]))
    assert shared and re.search(
        rf"augment: {COPIES * len(union)} copies of {len(union)} training images "
        rf".*\({COPIES * len(union)} made, 0 kept\)",
        output,
    )
    strips = json.loads((repo / "data/augmented/manifest.json").read_text())["strips"]
    assert sorted(strips) == sorted(  # one file per image, holding its copies
        path.relative_to(repo / "data/augmented").as_posix() for path in (repo / "data/augmented").rglob("*.png")
    )
    copies = [copy for strip in strips.values() for copy in strip["copies"]]
    assert len(strips) == len(union) and len(copies) == COPIES * len(union) < COPIES * (len(drawn[0]) + len(drawn[1]))
    for seed, rows in drawn.items():
        assert sources(training_set(repo, "augmented", seed)) == sorted(sources(rows) * (1 + COPIES))
        assert sources(training_set(repo, "repeated", seed)) == sorted(sources(rows) * (1 + COPIES))

    assert "up to date" in run(repo, "dvc", "status").stdout
    assert ran_stages(run(repo, "dvc", "repro").stdout) == set()

    # Another seed draws its own images; the others' draws, and so their runs, stay; only its new images get copies.
    set_params(repo, train={"seeds": [0, 1, 2]})
    output = run(repo, "dvc", "repro", "augment").stdout
    third = set(sources(training_set(repo, "original", 2)))
    made = re.search(r"\((\d+) made, (\d+) kept\)", output)
    assert int(made[1]) == COPIES * len(third - union) and int(made[2]) == len(copies)
    assert {seed: training_set(repo, "original", seed) for seed in (0, 1)} == drawn
    assert (
        "up to date"
        in run(
            repo, "dvc", "status", *(f"train@{arm}-{seed}" for arm in ("original", "augmented") for seed in (0, 1))
        ).stdout
    )
    assert "train@augmented-2" in run(repo, "dvc", "status", "train@augmented-2").stdout
