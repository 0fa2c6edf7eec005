"""Augmentation speed: augflow against ImageDataGenerator and albumentations, and the stage against its I/O floor.

Run from the project root after `make setup`:

    .venv/bin/python benchmarks/augment.py [--images 300] [--rounds 3]

Every method works on the same Fashion-MNIST training images, upscaled to
150x150 and tinted RGB, with the `seed` policy's transforms (the defaults in
tasks/common/params.py), bilinear, nearest fill. Transform-only figures use one
thread. The stage figures run tasks.augment.augment on every core, once with the
`seed` policy and once with a `flip` policy that flips nothing (decode, encode,
hash and write alone: the floor). Each figure is the best of `rounds` runs,
taken in turns, so a noisy neighbour hurts all methods alike. Speed is never
asserted in tests; this script is where it is measured. Writes
benchmarks/results/augment.json and prints a table.
"""

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.machine import RESULTS_DIR, machine  # noqa: E402
from tasks.augment.stage import augment
from tasks.common.copies import make_copy  # noqa: E402
from tasks.common.files import pixel_sha256, png_bytes, write_csv_atomic, write_text_atomic  # noqa: E402
from tasks.common.params import AugmentParams, IngestParams  # noqa: E402
from tasks.common.policies import FlipPolicy, SeedPolicy  # noqa: E402
from tasks.common.sets import SET_COLUMNS
from tasks.ingest.stage import iter_idx_images  # noqa: E402

RESULTS = RESULTS_DIR / "augment.json"
SIZE = 150
TARGETS = {"vs_image_data_generator": 15.0, "vs_albumentations": 1.0, "stage_vs_floor": 0.7}


def bench_images(count: int) -> list[np.ndarray]:
    """`count` Fashion-MNIST training images at 150x150, each tinted a different colour."""
    path = Path(IngestParams().source) / "train-images-idx3-ubyte.gz"
    images = []
    for index, pixels in iter_idx_images(path, set(range(count))):
        grey = np.asarray(Image.fromarray(pixels).resize((SIZE, SIZE), Image.BILINEAR), dtype=np.float32)
        tint = np.array([0.6 + 0.4 * np.sin(index + phase) for phase in (0, 2, 4)], dtype=np.float32)
        images.append(np.clip(grey[..., None] * tint + 20, 0, 255).astype(np.uint8))
    return images


def per_second(run, count: int) -> float:
    start = time.perf_counter()
    run()
    return count / (time.perf_counter() - start)


def transform_runs(images: list[np.ndarray], policy: SeedPolicy) -> dict:
    """One-thread transform-only loops over the same images, keyed by method."""
    import albumentations
    import tensorflow as tf

    params = AugmentParams(policy=policy)
    hashes = [pixel_sha256(pixels) for pixels in images]
    generator = tf.keras.preprocessing.image.ImageDataGenerator(
        rotation_range=policy.rotation_range,
        width_shift_range=policy.width_shift_range,
        height_shift_range=policy.height_shift_range,
        shear_range=policy.shear_range,
        zoom_range=policy.zoom_range,
        horizontal_flip=policy.horizontal_flip,
        fill_mode=policy.fill_mode,
    )
    as_float = [pixels.astype(np.float32) for pixels in images]
    zoom = (1 - policy.zoom_range, 1 + policy.zoom_range)
    albumentation = albumentations.Compose(
        [
            albumentations.Affine(
                scale={"x": zoom, "y": zoom},
                rotate=(-policy.rotation_range, policy.rotation_range),
                translate_percent={
                    "x": (-policy.width_shift_range, policy.width_shift_range),
                    "y": (-policy.height_shift_range, policy.height_shift_range),
                },
                shear=(-policy.shear_range, policy.shear_range),
                interpolation=cv2.INTER_LINEAR,
                border_mode=cv2.BORDER_REPLICATE,
                p=1.0,
            ),
            albumentations.HorizontalFlip(p=0.5),
        ],
        seed=0,
    )
    return {
        "augflow": lambda: [make_copy(pixels, sha, 0, params) for pixels, sha in zip(images, hashes)],
        "image_data_generator": lambda: [generator.random_transform(pixels) for pixels in as_float],
        "albumentations": lambda: [albumentation(image=pixels)["image"] for pixels in images],
    }


def stage_runs(images: list[np.ndarray], folder: Path, copies: int, policy: SeedPolicy) -> dict:
    """The whole stage on every core, with the seed policy and with a no-transform policy (the I/O floor)."""
    rows = []
    for index, pixels in enumerate(images):
        path = folder / "raw" / f"{index:05d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(png_bytes(pixels))
        rows.append(
            {"path": str(path), "tile": 0, "tiles": 1, "id": f"{index:05d}"}
            | {"sha256": pixel_sha256(pixels), "class": "bench"}
        )
    write_csv_atomic(folder / "original/seed-0.csv", SET_COLUMNS, rows)
    runs = {}
    for name, chosen in (("stage", policy), ("floor", FlipPolicy(name="flip", horizontal=False))):
        params = AugmentParams(copies=copies, policy=chosen, preview_images=1, preview_copies=1)

        def run(name=name, params=params):
            out = folder / name / str(time.perf_counter_ns())  # a fresh folder: nothing to keep from a last run
            augment(params, folder / "original", out, out.with_suffix(".sets"), out.with_suffix(".png"))

        runs[name] = run
    return runs


def png_levels(images: list[np.ndarray]) -> dict:
    """Pillow's PNG encoding of the transformed copies at levels 1 and 6: images/s on one thread and mean bytes."""
    copies = [make_copy(pixels, pixel_sha256(pixels), 0, AugmentParams()) for pixels in images]
    levels = {}
    for level in (1, 6):
        start = time.perf_counter()
        sizes = [len(png_bytes(pixels, level)) for pixels in copies]
        levels[level] = {
            "images_per_s": round(len(copies) / (time.perf_counter() - start)),
            "mean_bytes": round(float(np.mean(sizes))),
        }
    return levels


def best_of(runs: dict, count: int, rounds: int) -> dict:
    best = dict.fromkeys(runs, 0.0)
    for _ in range(rounds):
        for name, run in runs.items():
            best[name] = max(best[name], per_second(run, count))
    return {name: round(value, 1) for name, value in best.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=300, help="source images (default 300)")
    parser.add_argument("--copies", type=int, default=2, help="copies per image in the stage runs (default 2)")
    parser.add_argument("--rounds", type=int, default=3, help="runs of each method; the best counts (default 3)")
    args = parser.parse_args()

    images, policy = bench_images(args.images), SeedPolicy()
    cv2.setNumThreads(1)
    transforms = best_of(transform_runs(images, policy), len(images), args.rounds)
    with tempfile.TemporaryDirectory() as folder:
        stage = best_of(stage_runs(images, Path(folder), args.copies, policy), len(images) * args.copies, args.rounds)
    ratios = {
        "vs_image_data_generator": round(transforms["augflow"] / transforms["image_data_generator"], 2),
        "vs_albumentations": round(transforms["augflow"] / transforms["albumentations"], 2),
        "stage_vs_floor": round(stage["stage"] / stage["floor"], 2),
    }
    result = {
        "machine": machine() | {"opencv": cv2.__version__},
        "setup": {
            "images": args.images,
            "size": f"{SIZE}x{SIZE} RGB",
            "copies": args.copies,
            "rounds": args.rounds,
            "policy": policy.model_dump(mode="json"),
        },
        "transform_images_per_s_one_thread": transforms,
        "stage_images_per_s_all_cores": stage | {"workers": len(os.sched_getaffinity(0))},
        "png_levels_one_thread": png_levels(images),
        "ratios": ratios,
        "targets": TARGETS,
        "met": {name: ratios[name] >= target for name, target in TARGETS.items()},
    }
    write_text_atomic(RESULTS, json.dumps(result, indent=2) + "\n")

    print(f"{'transform only, one thread':<34} {'images/s':>10}")
    for name, value in transforms.items():
        print(f"  {name:<32} {value:>10.0f}")
    print(f"{'whole stage, every core':<34} {'images/s':>10}")
    for name, value in stage.items():
        print(f"  {name:<32} {value:>10.0f}")
    for name, value in ratios.items():
        print(f"{name:<34} {value:>9.2f}x  (target {TARGETS[name]}x: {'met' if value >= TARGETS[name] else 'NOT met'})")


if __name__ == "__main__":
    main()
