"""Stage `ingest`: turn the source dataset into train/val/test folders of PNG sheets plus a manifest.

Each split's images of a class are stored several to a PNG, side by side (a sheet), so DVC keeps, pushes
and pulls a few files where it would have kept one per image; data/raw/<split>/index.csv says which
sheet and place holds each image (write_split). A sheet ends after an image whose id hashes low (sheets_of),
so its images depend on their ids alone: adding or removing an image changes its own sheet only.

Fashion-MNIST's IDX files are read once, keeping only the chosen images (784 bytes each).
The subset is drawn per class from `ingest.seed`
with its own random stream, so adding a class never changes the images picked
for the others. val is drawn first, from the official training images; each
train seed then draws its own training subset from the rest (see choose_splits);
test is the official test set.

Any other source is a user's image folder or archive, read file by file
(tasks/ingest/sources.py), normalised through a content-addressed cache
(tasks/ingest/images.py) and curated (tasks/ingest/curate.py); every file it holds is either
ingested or listed with its reason in reports/ingest_report.json. Each train
seed then draws its own share of each class's training images,
`ingest.seed_sample` (see seed_samples).
"""

import gzip
import hashlib
import io
import json
import math
import struct
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
from PIL import Image

from tasks.common.arms import arm_named
from tasks.common.errors import UserError
from tasks.common.files import (
    atomic_directory,
    pixel_sha256,
    png_bytes,
    read_csv,
    read_image,
    strip_of,
    write_csv_atomic,
    write_text_atomic,
)
from tasks.common.params import FASHION_MNIST_CLASSES, IngestParams, Params, load_params
from tasks.common.paths import INGEST_CACHE_DIR, INGEST_REPORT, RAW_DIR, SETS_DIR, SPLIT_INDEX, TIMES_DIR
from tasks.common.sets import INDEX_COLUMNS, SET_COLUMNS, set_order
from tasks.common.times import training_estimate
from tasks.ingest.curate import (
    SPLITS,
    Refusal,
    Sample,
    assign_splits,
    collapse_duplicates,
    drop_small_classes,
    join_near_twins,
)
from tasks.ingest.images import cached_png, examine, own_size, upright_size
from tasks.ingest.sources import source_folder, walk

MANIFEST_COLUMNS = ("id", "sha256", "class", "split", "origin")
IDX_FILES = {  # official part -> (images file, labels file)
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "t10k": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}
IMAGES_MAGIC, LABELS_MAGIC = 2051, 2049
IMAGES_PER_READ = 1024
SHEET_IMAGES = 64  # images a sheet holds on average; at most four times as many


def _idx_path(folder: Path, name: str) -> Path:
    path = folder / name
    if not path.is_file():
        raise UserError(
            f"Fashion-MNIST file {path} is missing: install the dataset with "
            "'apt-get install dataset-fashion-mnist', or set ingest.source "
            "in params.yaml to a folder holding its four IDX .gz files."
        )
    return path


def read_idx_labels(path: Path) -> np.ndarray:
    with gzip.open(path, "rb") as handle:
        magic, count = struct.unpack(">II", handle.read(8))
        labels = np.frombuffer(handle.read(), dtype=np.uint8)
    if magic != LABELS_MAGIC or len(labels) != count:
        raise UserError(f"{path} is not an IDX label file (bad header or length): replace it with the original.")
    return labels


def iter_idx_images(path: Path, wanted: set[int]) -> Iterator[tuple[int, np.ndarray]]:
    """Yield (index, HxW uint8 pixels) for the wanted indices, reading the file once, in order."""
    with gzip.open(path, "rb") as handle:
        magic, count, rows, cols = struct.unpack(">IIII", handle.read(16))
        if magic != IMAGES_MAGIC:
            raise UserError(f"{path} is not an IDX image file (bad header): replace it with the original.")
        size = rows * cols
        for start in range(0, count, IMAGES_PER_READ):
            chunk = handle.read(size * min(IMAGES_PER_READ, count - start))
            if len(chunk) % size:
                raise UserError(f"{path} is truncated: replace it with the original.")
            images = np.frombuffer(chunk, dtype=np.uint8).reshape(-1, rows, cols)
            for offset, pixels in enumerate(images):
                if start + offset in wanted:
                    yield start + offset, pixels


def choose_splits(
    train_labels: np.ndarray, test_labels: np.ndarray, params: IngestParams, seeds: list[int] = (0,)
) -> tuple[dict[str, dict[int, str]], dict[int, list[int]]]:
    """({split: {index in its official file: class name}}, {train seed: the indices of its training subset}).

    Per class, val is drawn first from ingest.seed alone, so it is the same whatever the seeds.
    Each train seed then orders the rest with its own stream (ingest.seed, class, seed) and takes
    the first train_per_class: a training subset per seed, shared by every arm of that seed, and
    nested across sizes (the scaling study's 25 images are the first 25 of its 50). The train
    split is the union of the seeds' subsets, so only images some seed uses are written.
    """
    splits: dict[str, dict[int, str]] = {"train": {}, "val": {}, "test": {}}
    subsets: dict[int, list[int]] = {seed: [] for seed in seeds}
    for name in params.classes:
        label = FASHION_MNIST_CLASSES.index(name)
        rng = np.random.default_rng([params.seed, label])
        pool = rng.permutation(np.flatnonzero(train_labels == label))
        needed = params.train_per_class + params.val_per_class
        if len(pool) < needed:
            raise UserError(
                f"Class {name} has {len(pool)} training images but ingest.train_per_class + "
                f"ingest.val_per_class asks for {needed}: lower them in params.yaml."
            )
        splits["val"].update(dict.fromkeys(pool[: params.val_per_class].tolist(), name))
        for seed in seeds:
            order = np.random.default_rng([params.seed, label, seed]).permutation(pool[params.val_per_class :])
            chosen = order[: params.train_per_class].tolist()
            subsets[seed] += chosen
            splits["train"].update(dict.fromkeys(chosen, name))
        test_pool = rng.permutation(np.flatnonzero(test_labels == label))
        splits["test"].update(dict.fromkeys(test_pool[: params.test_per_class].tolist(), name))
    return splits, subsets


def is_fashion_mnist(folder: Path) -> bool:
    """A folder holding any of Fashion-MNIST's IDX file names is read as Fashion-MNIST (and checked as such)."""
    return folder.is_dir() and any((folder / name).exists() for files in IDX_FILES.values() for name in files)


def sheets_of(ids: list[str]) -> list[list[str]]:
    """ids, sorted, cut into the runs that share a sheet: a run ends after an id whose hash falls in the lowest
    1/SHEET_IMAGES of its range, or at 4 x SHEET_IMAGES ids."""
    runs, threshold = [[]], 256 // SHEET_IMAGES
    for image_id in sorted(ids):
        runs[-1].append(image_id)
        if hashlib.sha256(image_id.encode()).digest()[0] < threshold or len(runs[-1]) == 4 * SHEET_IMAGES:
            runs.append([])
    return [run for run in runs if run]


def write_split(
    staging: Path, raw_dir: Path, split: str, images: list[dict], pixels_of: Callable[[str], np.ndarray]
) -> list[dict]:
    """Write a split's sheets, <split>/<class>/<first id>.png, and its index, <split>/index.csv (every image's
    sheet and place, in set order), under staging; return the index's rows. `images` are manifest rows; pixels_of gives
    an id's pixels."""
    rows = []
    for label in sorted({image["class"] for image in images}):
        hashes = {image["id"]: image["sha256"] for image in images if image["class"] == label}
        for run in sheets_of(list(hashes)):
            name = f"{split}/{label}/{run[0]}.png"
            (staging / name).parent.mkdir(parents=True, exist_ok=True)
            (staging / name).write_bytes(png_bytes(strip_of([pixels_of(image_id) for image_id in run])))
            rows += [
                {"path": f"{raw_dir}/{name}", "tile": tile, "tiles": len(run), "id": image_id}
                | {"sha256": hashes[image_id], "class": label}
                for tile, image_id in enumerate(run)
            ]
    rows.sort(key=set_order)
    write_csv_atomic(staging / split / SPLIT_INDEX, INDEX_COLUMNS, rows)
    return rows


def write_raw(raw_dir: Path, manifest: list[dict], pixels_of: Callable[[str], np.ndarray]) -> list[dict]:
    """Replace raw_dir whole: every split's sheets and index, and the manifest; return the train split's index."""
    with atomic_directory(raw_dir) as staging:
        indexes = {
            split: write_split(staging, raw_dir, split, [row for row in manifest if row["split"] == split], pixels_of)
            for split in SPLITS
        }
        write_manifest(staging, manifest)
    return indexes["train"]


def write_training_sets(train_rows: list[dict], sets_dir: Path, subsets: dict[int, set[str]]) -> None:
    """Write sets_dir/original/seed-<s>.csv, each seed's training images (by id), from the train split's index: each
    with its class folder, not its sheet, so that a seed's set changes only when its own images do."""
    with atomic_directory(sets_dir / "original") as staging:
        for seed, ids in subsets.items():
            rows = [
                {"path": Path(row["path"]).parent.as_posix()} | {column: row[column] for column in SET_COLUMNS[1:]}
                for row in train_rows
                if row["id"] in ids
            ]
            write_csv_atomic(staging / f"seed-{seed}.csv", SET_COLUMNS, rows)


def split_counts(manifest: list[dict]) -> dict[str, int]:
    return {split: sum(row["split"] == split for row in manifest) for split in ("train", "val", "test")}


def sample_rank(ingest_seed: int, seed: int, image_id: str) -> bytes:
    """Where an image stands in a train seed's draw: a hash of (ingest.seed, the train seed, the image's content id)."""
    return hashlib.sha256(f"{ingest_seed}:{seed}:{image_id}".encode()).digest()


def seed_samples(manifest: list[dict], ingest_seed: int, seeds: list[int], fraction: float) -> dict[int, set[str]]:
    """{train seed: the ids of its training images}: per class, the share `fraction` of the train split's images
    (rounded to the nearest count, at least one), drawn without replacement; 1.0 gives every seed all of them.

    Why: with the same images in every run, seeds vary only the initialisation and the batch order, and
    the interval answers "for this exact training set". Drawing each seed's images from the training split
    adds the variation due to which images a collection holds, as the Fashion-MNIST default does by drawing
    fresh subsets. How much of it depends on the fraction: two seeds' sets share about `fraction` of their
    images, and for what averages over images the spread between subsets of one collection is that between
    fresh sets of their size times 1 - fraction (the finite-population correction). At 0.5, halves as in
    Dietterich's 5x2 cross-validation (1998), the seeds spread about as much as whole collections of the
    split's size would, and each model trains on half; near 1, each model trains on nearly everything but the
    seeds' sets overlap so much that little of that variation shows (the trouble Nadeau and Bengio, 2003,
    found in resampled t-tests).

    Without replacement, stratified: every set is a plain set of distinct images, of the same size for every
    seed (so every seed takes the same training steps), and every class keeps its share and is in every set,
    as training needs. A bootstrap would also cover the variation, but would list an image (and its copies)
    several times in a set, leave about a third of the images out of each set all the same, and make the
    reports' counts of training images count rows rather than images.

    A seed takes each class's images of lowest rank under sample_rank, keyed by (ingest.seed, the seed, the
    image's content id): adding a seed never changes another seed's draw (so DVC keeps its runs), and adding
    or removing images changes a seed's set only by those images and, where the rounded count changes, by
    the one at the edge.
    """
    by_class: dict[str, list[str]] = {}
    for row in manifest:
        if row["split"] == "train":
            by_class.setdefault(row["class"], []).append(row["id"])
    samples = {seed: set() for seed in seeds}
    for ids in by_class.values():
        count = max(1, math.floor(fraction * len(ids) + 0.5))
        for seed in seeds:
            samples[seed].update(sorted(ids, key=lambda image_id: sample_rank(ingest_seed, seed, image_id))[:count])
    return samples


def write_manifest(staging: Path, manifest: list[dict]) -> None:
    manifest.sort(key=lambda row: (row["split"], row["class"], row["id"]))
    write_csv_atomic(staging / "manifest.csv", MANIFEST_COLUMNS, manifest)


def ingest_fashion_mnist(
    params: IngestParams, raw_dir: Path, sets_dir: Path, report: Path, seeds: list[int]
) -> dict[str, int]:
    folder = Path(params.source)
    labels = {part: read_idx_labels(_idx_path(folder, files[1])) for part, files in IDX_FILES.items()}
    splits, subsets = choose_splits(labels["train"], labels["t10k"], params, seeds)
    wanted: dict[str, dict[int, tuple[str, str]]] = {"train": {}, "t10k": {}}
    for split, chosen in splits.items():
        part = "t10k" if split == "test" else "train"
        wanted[part].update({index: (split, name) for index, name in chosen.items()})
    manifest, pixels = [], {}
    for part, chosen in wanted.items():
        for index, image in iter_idx_images(_idx_path(folder, IDX_FILES[part][0]), set(chosen)):
            split, name = chosen[index]
            image_id = f"{part}-{index:05d}"
            pixels[image_id] = image
            manifest.append(
                {
                    "id": image_id,
                    "sha256": pixel_sha256(image),
                    "class": name,
                    "split": split,
                    "origin": f"fashion-mnist:{part}:{index}",
                }
            )
    train_index = write_raw(raw_dir, manifest, pixels.get)
    write_training_sets(
        train_index, sets_dir, {seed: {f"train-{i:05d}" for i in chosen} for seed, chosen in subsets.items()}
    )
    counts = split_counts(manifest)
    write_report(
        report, {"source": params.source, "kind": "fashion-mnist", "ingested": len(manifest), "splits": counts}
    )
    print(
        f"ingest: {counts['train']} train ({params.train_per_class} per class for each of seeds {list(seeds)}), "
        f"{counts['val']} val, {counts['test']} test images of {params.classes}"
    )
    return counts


def write_report(path: Path, report: dict) -> None:
    write_text_atomic(path, json.dumps(report, indent=2, ensure_ascii=False) + "\n")


def read_images(params: IngestParams, cache_dir: Path) -> tuple[int, list[Sample], list[Refusal], tuple[int, int]]:
    """(files in the source, decodable images, refused files, their size), one file at a time through the cache.

    The size is ingest.image_size, or with null the images' own, read from their headers first."""
    files, images, refused = 0, [], []
    with source_folder(Path(params.source), params.max_archive_bytes, params.max_archive_members) as folder:
        items = list(walk(folder))
        size = params.image_size or own_size(
            [found for item in items if not item.reason and (found := upright_size(item.path, params.max_pixels))]
        )
        for item in items:
            files += 1
            facts = (
                {"reason": item.reason, "detail": item.detail}
                if item.reason
                else examine(item.path, size, params.max_pixels, cache_dir)
            )
            if "reason" in facts:
                refused.append(Refusal(item.name, facts["reason"], facts["detail"]))
            else:
                images.append(
                    Sample(
                        item.name,
                        item.label,
                        item.split,
                        facts["content"],
                        facts["dhash"],
                        facts["key"],
                        facts["grey"],
                        facts["sha256"],
                    )
                )
    return files, images, refused, size


def check_usable(images: list[Sample], source: str, report: Path) -> None:
    """A set a classifier cannot use stops here, in one sentence."""
    labels = sorted({image.label for image in images})
    if not images:
        raise UserError(
            f"ingest.source {source} holds no usable image (reasons in {report}): point it at class folders of images."
        )
    if len(labels) < 2:
        raise UserError(
            f"ingest.source {source} has one usable class ({labels[0]}): a classifier needs at least two class folders."
        )
    for split in SPLITS:
        if not any(image.split == split for image in images):
            raise UserError(
                f"No image of {source} fell in the {split} split: add images, "
                "or give that split a larger share in ingest.split."
            )


def ingest_images(
    params: IngestParams, raw_dir: Path, sets_dir: Path, report: Path, cache_dir: Path, seeds: list[int]
) -> dict[str, int]:
    files, images, refused, size = read_images(params, cache_dir)
    images, duplicates = collapse_duplicates(images)
    images, small = drop_small_classes(images, params.min_per_class)
    images = assign_splits(images, params.seed, params.split.val, params.split.test)
    images, moved = join_near_twins(images, params.near_dup_distance)
    refused = sorted(refused + duplicates + small, key=lambda refusal: refusal.file)
    color_mode = params.color_mode or ("grayscale" if images and all(image.grey for image in images) else "rgb")
    reasons = Counter(refusal.reason for refusal in refused)
    summary = {
        "source": params.source,
        "kind": "images",
        "files": files,
        "ingested": len(images),
        "not_ingested": len(refused),
        "reasons": dict(sorted(reasons.items())),
        "near_duplicates_moved": len(moved),
        "color_mode": color_mode,
        "image_size": list(size),
        "splits": {
            split: dict(sorted(Counter(i.label for i in images if i.split == split).items())) for split in SPLITS
        },
    }
    write_report(report, summary | {"refused": [vars(r) for r in refused], "moved": moved})
    check_usable(images, params.source, report)
    manifest = [
        {
            "id": image.content[:16],
            "sha256": image.sha256[color_mode],
            "class": image.label,
            "split": image.split,
            "origin": image.name,
        }
        for image in images
    ]
    keys = {image.content[:16]: image.key for image in images}

    def pixels_of(image_id: str) -> np.ndarray:
        return read_image(io.BytesIO(cached_png(keys[image_id], color_mode, cache_dir)))

    train_index = write_raw(raw_dir, manifest, pixels_of)
    write_training_sets(train_index, sets_dir, seed_samples(manifest, params.seed, seeds, params.seed_sample))
    counts = split_counts(manifest)
    why = ", ".join(f"{count} {reason}" for reason, count in summary["reasons"].items())
    drawn = (
        "every seed trains on all of them"
        if params.seed_sample == 1
        else f"each seed trains on its own {params.seed_sample:.0%} of each class"
    )
    print(
        f"ingest: {counts['train']} train ({drawn}), {counts['val']} val, {counts['test']} test images of "
        f"{len({image.label for image in images})} classes ({color_mode}, {size[0]}x{size[1]}) "
        f"from {files} files; {len(refused)} not ingested{f' ({why})' if why else ''}, "
        f"{len(moved)} near-duplicates moved: see {report}"
    )
    return counts


def ingest(
    params: IngestParams,
    raw_dir: Path = RAW_DIR,
    sets_dir: Path = SETS_DIR,
    report: Path = INGEST_REPORT,
    cache_dir: Path = INGEST_CACHE_DIR,
    seeds: list[int] = (0,),
) -> dict[str, int]:
    """Write raw_dir/<split>/ (sheets and index.csv), raw_dir/manifest.csv, sets_dir/original/seed-<s>.csv per seed
    and the report."""
    if is_fashion_mnist(Path(params.source)):
        return ingest_fashion_mnist(params, raw_dir, sets_dir, report, seeds)
    return ingest_images(params, raw_dir, sets_dir, report, cache_dir, seeds)


def training_plan(
    params: Params, raw_dir: Path = RAW_DIR, sets_dir: Path = SETS_DIR, times_dir: Path = TIMES_DIR
) -> str:
    """What the training stages will do with what ingest wrote, and how long that will take here, before they start."""
    first = next(iter(params.train.seeds))
    per_seed = len(read_csv(sets_dir / "original" / f"seed-{first}.csv"))
    first_image = read_csv(raw_dir / "train" / SPLIT_INDEX)[0]
    with Image.open(first_image["path"]) as image:
        width = image.width // int(first_image["tiles"])
        pixels = width * image.height * len(image.getbands())
        shape = f"{image.height}x{width} {'grayscale' if image.mode == 'L' else 'rgb'}"
    shown = {arm: per_seed * arm_named(arm).per_original(params.augment.copies) for arm in params.arms}
    runs = len(params.arms) * len(params.train.seeds)
    total = sum(shown.values()) * len(params.train.seeds) * params.train.epochs * pixels
    return f"ingest: training at {shape}, {per_seed} images per seed; {training_estimate(total, runs, times_dir)}."


def main() -> None:
    params = load_params()
    ingest(params.ingest, seeds=params.train.seeds)
    print(training_plan(params), flush=True)
