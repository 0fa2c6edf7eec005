"""Stage `augment`: write `augment.copies` copies of every training image under `augment.policy`.

Copy j of an image is `make_copy(pixels, its pixel hash, j, params)` (tasks/common/copies.py): a
function of (pixel hash, j, augment.seed, policy) alone, so files are byte-identical whatever the
order, batch or number of workers that made them, and the online arm calls the same function from
tf.data. tasks/common/policies.py says what each policy draws; tasks/common/warps.py resamples each
copy once through its fused matrix.

Every seed has its own training subset (data/sets/original/seed-<s>.csv); a copy
depends on its image alone, so an image shared by several seeds is copied once.
Then it writes the training set of every arm built from the originals (tasks/common/arms.py says how
each is built). `--policy NAME` makes a compared policy's arm the same way, in its own folder.

An image's copies are stored together: data/augmented/<class>/<id>.png holds its `copies` copies side
by side (its strip), so the folder holds one file per training image, not one per copy, and DVC's work
grows with the images. The set files name each copy by strip, place in it, id and pixel hash.

The stage is incremental: `data/augmented` is a persistent DVC output holding a
manifest of what made each strip. A rerun keeps every strip whose source image,
settings and copy-making code are unchanged, writes strips only for new images (or,
when `copies` changed, rewrites each strip with its kept copies' pixels and makes
only the new ones), and deletes strips whose source left the training set. A changed
policy, seed, encoding or engine changes the manifest's signature and regenerates everything.
"""

import argparse
import hashlib
import json
import os
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import get_args

import cv2
from tqdm import tqdm

from tasks.augment.preview import draw_preview, preview_rows
from tasks.common.arms import BUILT_BY_AUGMENT, arm_named
from tasks.common.copies import as_stored, encode_strip, make_copy, signature
from tasks.common.files import (
    atomic_directory,
    pixel_sha256,
    read_csv,
    read_image,
    tile_of,
    write_bytes_atomic,
    write_csv_atomic,
    write_text_atomic,
)
from tasks.common.params import AugmentParams, load_params
from tasks.common.paths import AUGMENTED_DIR, ORIGINAL_SETS, PREVIEW, SETS_DIR, policy_augmented_dir
from tasks.common.policies import PolicyName, policy_from_name
from tasks.common.sets import SET_COLUMNS, located, read_tile, set_order

MANIFEST = "manifest.json"
PROGRESS_FROM = 2000  # copies to make before a progress bar is worth showing


def strip_name(row: dict) -> str:
    """Where an image's copies are stored, relative to the stage's folder: <class>/<its id>.png."""
    return f"{row['class']}/{row['id']}.png"


def make_batch(job: tuple[AugmentParams, Path, list[tuple[dict, int, int]]]) -> tuple[dict[str, dict], int]:
    """Write the strips of a batch of source images (located rows: each with its sheet and place), each with the first
    `kept` of the `stored` copies of its current strip and the others made; return their manifest entries and how
    many copies were made."""
    params, out_dir, sources = job
    entries, made, sheets = {}, 0, {}
    for row, kept, stored in sources:
        name = strip_name(row)
        current = read_image(out_dir / name) if kept else None
        copies = [tile_of(current, copy, stored) for copy in range(kept)]
        pixels = read_tile(row, sheets)
        copies += [
            as_stored(make_copy(pixels, row["sha256"], copy, params), params) for copy in range(kept, params.copies)
        ]
        made += params.copies - kept
        data = encode_strip(copies, params)
        write_bytes_atomic(out_dir / name, data)
        entries[name] = {
            "source": row["sha256"],
            "copies": [pixel_sha256(copy) for copy in copies],
            "file_sha256": hashlib.sha256(data).hexdigest(),
        }
    return entries, made


def run_batches(jobs: Iterable, workers: int) -> Iterator[tuple[dict[str, dict], int]]:
    """make_batch over jobs, on `workers` processes with a bounded queue; results never depend on the count."""
    if workers <= 1:
        yield from map(make_batch, jobs)
        return
    context = get_context("spawn")  # no fork: OpenCV's thread pool does not survive one
    with ProcessPoolExecutor(workers, mp_context=context, initializer=cv2.setNumThreads, initargs=(1,)) as pool:
        pending = deque()
        for job in jobs:
            pending.append(pool.submit(make_batch, job))
            if len(pending) >= 4 * workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


def read_manifest(out_dir: Path, expected: str) -> dict[str, dict]:
    """The previous run's strips, or none if it ran under another signature (or never ran)."""
    try:
        manifest = json.loads((out_dir / MANIFEST).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}
    return manifest.get("strips", {}) if manifest.get("signature") == expected else {}


def still_valid(path: Path, entry: dict | None, source_sha256: str) -> bool:
    return (
        entry is not None
        and entry["source"] == source_sha256
        and path.is_file()
        and hashlib.sha256(path.read_bytes()).hexdigest() == entry["file_sha256"]
    )


def batched(items: list, size: int) -> Iterator[list]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def update_copies(
    params: AugmentParams, training_set: list[dict], out_dir: Path, workers: int, batch_size: int
) -> tuple[dict[str, dict], int]:
    """Bring out_dir's strips of training_set (located rows) up to date; return (its manifest entries, how many copies
    were made)."""
    expected = signature(params)
    previous = read_manifest(out_dir, expected)
    manifest, todo = {}, []
    for row in training_set:
        name = strip_name(row)
        entry = previous.get(name)
        stored = len(entry["copies"]) if still_valid(out_dir / name, entry, row["sha256"]) else 0
        if stored and stored == params.copies:
            manifest[name] = entry
        elif params.copies:  # a new strip, or one with another number of copies: its kept copies are not made again
            todo.append((row, min(stored, params.copies), stored))

    made = 0
    total = sum(params.copies - kept for _, kept, _ in todo)
    progress = tqdm(total=total, unit="img", desc="augment", disable=None if total >= PROGRESS_FROM else True)
    jobs = ((params, out_dir, batch) for batch in batched(todo, batch_size))
    for entries, count in run_batches(jobs, workers if len(todo) > batch_size else 1):
        manifest |= entries
        made += count
        progress.update(count)
    progress.close()

    out_dir.mkdir(parents=True, exist_ok=True)
    for path in sorted(out_dir.rglob("*"), reverse=True):  # files and then emptied folders of removed strips
        name = path.relative_to(out_dir).as_posix()
        if path.is_file() and name not in manifest and name != MANIFEST:
            path.unlink()
        elif path.is_dir() and not any(path.iterdir()):
            path.rmdir()
    write_text_atomic(
        out_dir / MANIFEST, json.dumps({"signature": expected, "strips": manifest}, indent=1, sort_keys=True) + "\n"
    )
    return manifest, made


def copy_rows(rows: list[dict], manifest: dict[str, dict], out_dir: Path) -> list[dict]:
    """A set's rows for the copies of `rows`' images: strip, place in it, id, pixel hash."""
    copies = []
    for row in rows:
        name = strip_name(row)
        hashes = manifest[name]["copies"] if name in manifest else []  # none when augment.copies is 0
        path = str(out_dir / name)
        copies += [
            {"path": path, "tile": copy, "tiles": len(hashes), "id": f"{row['id']}-{copy:03d}"}
            | {"sha256": sha256, "class": row["class"]}
            for copy, sha256 in enumerate(hashes)
        ]
    return copies


def write_set(path: Path, rows: list[dict]) -> None:
    """A training-set file: its rows in training order, under the columns every set has and any its arm adds (a
    copy's place in its strip; online's policy)."""
    columns = dict.fromkeys([*SET_COLUMNS, *(column for row in rows for column in row)])
    write_csv_atomic(path, columns, sorted(rows, key=set_order))


def read_sets(folder: Path) -> dict[str, list[dict]]:
    """Every seed's training set in folder: {"seed-<s>": its rows}."""
    return {path.stem: read_csv(path) for path in sorted(folder.glob("seed-*.csv"))}


def augment(
    params: AugmentParams,
    original_sets: Path = ORIGINAL_SETS,
    out_dir: Path = AUGMENTED_DIR,
    sets_dir: Path = SETS_DIR,
    preview: Path | None = PREVIEW,
    workers: int | None = None,
    batch_size: int = 16,
    arms: tuple[str, ...] = BUILT_BY_AUGMENT,
) -> int:
    """Bring out_dir up to date for every seed's training images when an arm lists stored copies; write each
    seed's training set of every arm into sets_dir/<arm>/; then the preview, if asked for.

    Copies are made once per image, whichever seeds train on it. Return how many copies
    were made (not kept from the last run). `workers` defaults to every usable core.
    """
    workers = len(os.sched_getaffinity(0)) if workers is None else workers
    seed_sets = read_sets(original_sets)
    training_set = sorted({row["id"]: row for rows in seed_sets.values() for row in rows}.values(), key=set_order)
    copies_of = {}  # by original's id: its stored copies (strip, place, pixel hash), when an arm lists them
    if any(arm_named(name).lists_copies for name in arms):
        manifest, made = update_copies(params, located(training_set), out_dir, workers, batch_size)
        copies_of = {row["id"]: copy_rows([row], manifest, out_dir) for row in training_set}
    else:
        manifest, made = {}, 0
    for arm in arms:
        build = arm_named(arm).training_set
        with atomic_directory(sets_dir / arm) as staging:
            for name, rows in seed_sets.items():
                copies = [copy for row in rows for copy in copies_of.get(row["id"], [])]
                write_set(staging / f"{name}.csv", build(rows, copies, params))
    if preview is not None:
        examples = []
        for row in located(preview_rows(training_set, params.preview_images)):
            pixels = read_tile(row)
            copies = [
                make_copy(pixels, row["sha256"], copy, params)
                for copy in range(min(params.copies, params.preview_copies))
            ]
            examples.append((row["class"], pixels, copies))
        draw_preview(examples, preview)
    copies = sum(len(entry["copies"]) for entry in manifest.values())
    kept = copies - made
    print(f"augment: {copies} copies of {len(training_set)} training images in {out_dir} ({made} made, {kept} kept)")
    return made


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--policy",
        choices=get_args(PolicyName),
        help="make a compared policy's arm (evaluate.compare_policies) instead",
    )
    name = parser.parse_args().policy
    params = load_params().augment
    if name is None:
        augment(params)
    else:  # the same copies and seed as the augmented arm, so the arms differ only in the policy
        policy_params = params.model_copy(update={"policy": policy_from_name(name)})
        augment(policy_params, out_dir=policy_augmented_dir(name), preview=None, arms=(name,))
