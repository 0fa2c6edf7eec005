"""The augment stage end to end, `dvc repro`'s start-up and bookkeeping included, against the article's loop.

Run from the project root after `make setup`:

    .venv/bin/python benchmarks/augment_stage.py [--rounds 3] [--loop-copies 20]

The classic demonstration's setting: a dogs_cat-style folder (train/ and
validation/ class folders) of 538 training images, 150x150 colour (benchmarks/
augment.py's tinted Fashion-MNIST images, saved as JPEG), ingested at 150x150
RGB, 20 copies each. Per round, taken in turns:

- stage: `dvc repro --force --single-item augment` in a fresh copy of a project
  where ingest already ran (so every copy is made and committed to a DVC cache
  that has none of them), timed from the command's start to its end, once with
  the project's cache settings and once with `cache.type hardlink` (DVC links
  the outputs into its cache instead of copying them);
- loop: the article's ImageDataGenerator loop, `flow(x, batch_size=1,
  save_to_dir=..., save_format="jpeg")` 20 times per image, in a fresh process.

The loop runs on `--loop-copies` copies per image (quick mode: fewer; its rate
is per image) and both figures are images written per second. Medians of the
rounds. Writes benchmarks/results/augment_stage.json with the copies' dvc.lock
hash, which is the same in every round if the stage is deterministic.
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.augment import bench_images  # noqa: E402
from benchmarks.machine import RESULTS_DIR, machine  # noqa: E402
from tasks.common.files import read_csv, write_text_atomic  # noqa: E402
from tasks.common.paths import ORIGINAL_SETS  # noqa: E402
from tasks.orchestration.cluster import rebuild_workspace, workspace_snapshot  # noqa: E402

RESULTS = RESULTS_DIR / "augment_stage.json"
CACHE_TYPES = {"project's cache settings": None, "cache.type hardlink": "hardlink"}
TRAIN, VALIDATION, COPIES = 538, 100, 20
ENV = os.environ | {"PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
ARTICLE_LOOP = """
import sys, time
from pathlib import Path
import numpy as np
from tensorflow.keras.preprocessing.image import ImageDataGenerator, img_to_array, load_img
source, out, copies = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
datagen = ImageDataGenerator(rotation_range=40, width_shift_range=0.2, height_shift_range=0.2, shear_range=0.2,
                             zoom_range=0.2, horizontal_flip=True, fill_mode="nearest")
start = time.perf_counter()
for path in sorted(source.glob("*/*.jpg")):
    x = img_to_array(load_img(path)).reshape((1, 150, 150, 3))
    flow = datagen.flow(x, batch_size=1, save_to_dir=str(out), save_prefix=path.stem, save_format="jpeg")
    for i, _ in enumerate(flow, 1):
        if i >= copies:
            break
print(time.perf_counter() - start)
"""


def dogs_cat(folder: Path) -> Path:
    """folder/{train,validation}/{cats,dogs}/*.jpg: TRAIN and VALIDATION images, half in each class."""
    for number, pixels in enumerate(bench_images(TRAIN + VALIDATION)):
        split = "train" if number < TRAIN else "validation"
        path = folder / split / ("cats", "dogs")[number % 2] / f"{number:04d}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(pixels).save(path, quality=95)
    return folder


def ingested_project(folder: Path, source: Path) -> Path:
    """A git + DVC copy of the project on the article's setting, with ingest reproduced."""
    rebuild_workspace(workspace_snapshot(ROOT), folder)
    return ingest_article_setting(folder, source)


def ingest_article_setting(folder: Path, source: Path) -> Path:
    """Set the project in folder (any version of augflow's code) to the article's setting and reproduce its ingest."""
    params = yaml.safe_load((folder / "params.yaml").read_text())
    params["ingest"] |= {"source": str(source), "image_size": [150, 150], "color_mode": "rgb", "near_dup_distance": 0}
    params["augment"]["copies"] = COPIES
    (folder / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    subprocess.run(["dvc", "repro", "--single-item", "ingest"], cwd=folder, env=ENV, check=True, capture_output=True)
    return folder


def copies_made(base: Path) -> int:
    """The copies augment makes in base: COPIES for each image some seed trains on (each seed draws its own
    subset; ingest drops near-twins). An image is its id, or in a version before sheets its own file."""
    sets = (read_csv(path) for path in (base / ORIGINAL_SETS).glob("seed-*.csv"))
    return COPIES * len({row.get("id", row["path"]) for rows in sets for row in rows})


def stage_seconds(base: Path, copy: Path, cache_type: str | None) -> tuple[float, str]:
    """Wall seconds of `dvc repro --force --single-item augment` in a fresh copy of base; the copies' hash."""
    shutil.copytree(base, copy, symlinks=True)
    if cache_type:
        subprocess.run(["dvc", "config", "--local", "cache.type", cache_type], cwd=copy, env=ENV, check=True)
    start = time.perf_counter()
    subprocess.run(
        ["dvc", "repro", "--force", "--single-item", "augment"], cwd=copy, env=ENV, check=True, capture_output=True
    )
    seconds = time.perf_counter() - start
    outs = yaml.safe_load((copy / "dvc.lock").read_text())["stages"]["augment"]["outs"]
    shutil.rmtree(copy)
    return seconds, next(out["md5"] for out in outs if out["path"] == "data/augmented")


def loop_seconds(source: Path, out: Path, copies: int) -> float:
    """Seconds the article's loop takes in a fresh process (its own start-up left out, as in the article)."""
    out.mkdir()
    result = subprocess.run(
        [sys.executable, "-c", ARTICLE_LOOP, str(source), str(out), str(copies)],
        env=ENV,
        check=True,
        capture_output=True,
        text=True,
    )
    shutil.rmtree(out)  # not counted: the loop names files by a random number, and a rare collision overwrites one
    return float(result.stdout.split()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--loop-copies", type=int, default=COPIES, help=f"copies per image in the article's loop (default {COPIES})"
    )
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="augflow-bench-") as scratch:
        work = Path(scratch)
        source = dogs_cat(work / "dogs_cat")
        base = ingested_project(work / "base", source)
        images = copies_made(base)
        stage, loop, hashes = {name: [] for name in CACHE_TYPES}, [], set()
        for round_ in range(args.rounds):
            for name, cache_type in CACHE_TYPES.items():
                seconds, digest = stage_seconds(base, work / f"stage-{round_}", cache_type)
                stage[name].append(images / seconds)
                hashes.add(digest)
            loop.append(
                TRAIN * args.loop_copies / loop_seconds(source / "train", work / f"loop-{round_}", args.loop_copies)
            )
            rates = ", ".join(f"{name} {values[-1]:.0f}" for name, values in stage.items())
            print(f"round {round_ + 1}: stage {rates} images/s; article's loop {loop[-1]:.0f} images/s", flush=True)
    result = {
        "machine": machine(),
        "load_average_1min_before": round(load_before, 2),
        "setup": {
            "training_images": TRAIN,
            "size": "150x150 RGB",
            "copies": COPIES,
            "loop_copies": args.loop_copies,
            "rounds": args.rounds,
        },
        "copies_made": images,
        "stage_images_per_s": {name: [round(value) for value in values] for name, values in stage.items()},
        "article_loop_images_per_s": [round(value) for value in loop],
        "median_stage_images_per_s": {name: round(statistics.median(values)) for name, values in stage.items()},
        "median_article_loop_images_per_s": round(statistics.median(loop)),
        "ratio": {
            name: round(statistics.median(s / lp for s, lp in zip(values, loop)), 2) for name, values in stage.items()
        },
        "target": 5.0,
        "copies_md5": sorted(hashes),
    }
    write_text_atomic(RESULTS, json.dumps(result, indent=2) + "\n")
    print(
        f"stage / article's loop: {result['ratio']} (target 5x); "
        f"the copies' hash the same in every run: {len(hashes) == 1}"
    )


if __name__ == "__main__":
    main()
