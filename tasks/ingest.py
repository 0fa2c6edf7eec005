"""Stage `ingest`: turn the source dataset into train/val/test PNG folders plus a manifest.

Fashion-MNIST's IDX files are streamed image by image, so memory stays flat
whatever the subset size. The subset is drawn per class from `ingest.seed`
with its own random stream, so adding a class never changes the images picked
for the others. val comes from the official training images that train did not
take; test is the official test set.
"""

import gzip
import struct
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from tasks.errors import UserError, run_cli
from tasks.files import SET_COLUMNS, atomic_directory, pixel_sha256, png_bytes, write_csv_atomic
from tasks.params import FASHION_MNIST_CLASSES, IngestParams, load_params

RAW_DIR = Path("data/raw")
SETS_DIR = Path("data/sets")
MANIFEST_COLUMNS = ("id", "sha256", "class", "split", "origin")
IDX_FILES = {  # official part -> (images file, labels file)
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "t10k": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}
IMAGES_MAGIC, LABELS_MAGIC = 2051, 2049
IMAGES_PER_READ = 1024


def _idx_path(folder: Path, name: str) -> Path:
    path = folder / name
    if not path.is_file():
        raise UserError(
            f"Fashion-MNIST file {path} is missing: install the dataset with "
            "'apt-get install dataset-fashion-mnist', or set ingest.fashion_mnist_dir "
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


def choose_splits(train_labels: np.ndarray, test_labels: np.ndarray, params: IngestParams) -> dict[str, dict[int, str]]:
    """Map each split to {index in its official file: class name}, deterministically from ingest.seed."""
    splits: dict[str, dict[int, str]] = {"train": {}, "val": {}, "test": {}}
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
        splits["train"].update(dict.fromkeys(pool[: params.train_per_class].tolist(), name))
        splits["val"].update(dict.fromkeys(pool[params.train_per_class : needed].tolist(), name))
        test_pool = rng.permutation(np.flatnonzero(test_labels == label))
        splits["test"].update(dict.fromkeys(test_pool[: params.test_per_class].tolist(), name))
    return splits


def ingest(params: IngestParams, raw_dir: Path = RAW_DIR, sets_dir: Path = SETS_DIR) -> dict[str, int]:
    """Write raw_dir/{split}/{class}/{id}.png, raw_dir/manifest.csv and sets_dir/original.csv."""
    folder = Path(params.fashion_mnist_dir)
    labels = {part: read_idx_labels(_idx_path(folder, files[1])) for part, files in IDX_FILES.items()}
    splits = choose_splits(labels["train"], labels["t10k"], params)
    wanted: dict[str, dict[int, tuple[str, str]]] = {"train": {}, "t10k": {}}
    for split, chosen in splits.items():
        part = "t10k" if split == "test" else "train"
        wanted[part].update({index: (split, name) for index, name in chosen.items()})
    manifest = []
    with atomic_directory(raw_dir) as staging:
        for part, chosen in wanted.items():
            for index, pixels in iter_idx_images(_idx_path(folder, IDX_FILES[part][0]), set(chosen)):
                split, name = chosen[index]
                image_id = f"{part}-{index:05d}"
                path = staging / split / name / f"{image_id}.png"
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(png_bytes(pixels))
                manifest.append(
                    {"id": image_id, "sha256": pixel_sha256(pixels), "class": name,
                     "split": split, "origin": f"fashion-mnist:{part}:{index}"}
                )  # fmt: skip
        manifest.sort(key=lambda row: (row["split"], row["class"], row["id"]))
        write_csv_atomic(staging / "manifest.csv", MANIFEST_COLUMNS, manifest)
    training_set = [
        {"path": f"{raw_dir}/train/{row['class']}/{row['id']}.png", "sha256": row["sha256"], "class": row["class"]}
        for row in manifest
        if row["split"] == "train"
    ]
    write_csv_atomic(sets_dir / "original.csv", SET_COLUMNS, training_set)
    counts = {split: sum(row["split"] == split for row in manifest) for split in ("train", "val", "test")}
    print(f"ingest: {counts['train']} train, {counts['val']} val, {counts['test']} test images of {params.classes}")
    return counts


def main() -> None:
    ingest(load_params().ingest)


if __name__ == "__main__":
    run_cli(main)
