"""Which decoded images a user's set keeps, and in which split: duplicates, conflicts, leakage.

Everything here is decided from file names (sorted, so listing order never
matters) and image content, never from file times: the same files always give
the same outcome. "Earliest" means first by path inside the source.
"""

import hashlib
from collections import defaultdict
from dataclasses import dataclass, field, replace

import numpy as np

SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class Sample:
    name: str  # path inside the source
    label: str
    split: str | None  # from a split folder, or None: drawn by content
    content: str  # sha256 of the decoded pixels
    dhash: int
    key: str  # cache key of the normalised pixels
    grey: bool = False
    sha256: dict[str, str] = field(default_factory=dict)  # stored pixels' hash per colour mode


@dataclass(frozen=True)
class Refusal:
    file: str  # path inside the source
    reason: str
    detail: str


def collapse_duplicates(images: list[Sample]) -> tuple[list[Sample], list[Refusal]]:
    """Keep the earliest of each set of identical pixels; identical pixels under two classes keep none."""
    groups: dict[str, list[Sample]] = defaultdict(list)
    for image in sorted(images, key=lambda image: image.name):
        groups[image.content].append(image)
    kept, refused = [], []
    for group in groups.values():
        labels = sorted({image.label for image in group})
        if len(labels) > 1:
            detail = f"label conflict: the same pixels appear under classes {', '.join(labels)}"
            refused += [Refusal(image.name, "label_conflict", detail) for image in group]
            continue
        kept.append(group[0])
        refused += [Refusal(image.name, "duplicate", f"same pixels as {group[0].name}") for image in group[1:]]
    return sorted(kept, key=lambda image: image.name), refused


def drop_small_classes(images: list[Sample], min_per_class: int) -> tuple[list[Sample], list[Refusal]]:
    counts = defaultdict(int)
    for image in images:
        counts[image.label] += 1
    small = {label for label, count in counts.items() if count < min_per_class}
    refused = [
        Refusal(
            image.name,
            "small_class",
            f"class {image.label} has {counts[image.label]} usable images, "
            f"fewer than ingest.min_per_class ({min_per_class})",
        )
        for image in images
        if image.label in small
    ]
    return [image for image in images if image.label not in small], refused


def draw_split(content: str, seed: int, val: float, test: float) -> str:
    """test, val or train from the image's content alone, so adding images never moves another one."""
    digest = hashlib.sha256(f"{seed}:{content}".encode()).digest()
    share = int.from_bytes(digest[:8], "big") / 2**64
    return "test" if share < test else "val" if share < test + val else "train"


def assign_splits(images: list[Sample], seed: int, val: float, test: float) -> list[Sample]:
    """Split folders are kept; a split without its folder is drawn, by content, from the train images."""
    given = {image.split for image in images if image.split}
    missing = {"val": val if "val" not in given else 0.0, "test": test if "test" not in given else 0.0}
    return [
        image if image.split in ("val", "test") else replace(image, split=draw_split(image.content, seed, **missing))
        for image in images
    ]


def near_duplicate_groups(images: list[Sample], distance: int) -> list[list[int]]:
    """Indices of images linked by chains of dHashes within `distance` bits, each group in name order."""
    hashes = np.array([image.dhash for image in images], dtype=np.uint64)
    parent = list(range(len(images)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i in range(len(images) - 1):
        for j in np.flatnonzero(np.bitwise_count(hashes[i + 1 :] ^ hashes[i]) <= distance) + i + 1:
            parent[root(int(j))] = root(i)
    groups = defaultdict(list)
    for i in sorted(range(len(images)), key=lambda i: images[i].name):
        groups[root(i)].append(i)
    return [group for group in groups.values() if len(group) > 1]


def join_near_twins(images: list[Sample], distance: int) -> tuple[list[Sample], list[dict]]:
    """Move each near-duplicate into its earliest twin's split; report every move."""
    images, moves = list(images), []
    for group in near_duplicate_groups(images, distance):
        earliest = images[group[0]]
        for i in group[1:]:
            if images[i].split != earliest.split:
                bits = int(np.bitwise_count(np.uint64(images[i].dhash ^ earliest.dhash)))
                moves.append(
                    {
                        "file": images[i].name,
                        "twin": earliest.name,
                        "from": images[i].split,
                        "to": earliest.split,
                        "distance": bits,
                    }
                )
                images[i] = replace(images[i], split=earliest.split)
    return images, moves
