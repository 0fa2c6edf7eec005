"""What a set file says, and where its images are: shared by ingest, augment, training and evaluation.

Images are stored several to a file, side by side: ingest's sheets hold a run of a split's images of one class,
augment's strips one image's copies. A split's index (data/raw/<split>/index.csv) says which sheet and place hold
each of its images. A set file names each image by id and pixel hash, so it says exactly which pixels every
example is: a copy with its strip and place there; an original with its class folder of sheets alone, where the
index finds it, so that a set changes only when its own images do, not when a sheet gains another image.
"""

from pathlib import Path

import numpy as np

from tasks.common.files import read_csv, read_image, tile_of
from tasks.common.paths import SPLIT_INDEX

SET_COLUMNS = ("path", "id", "sha256", "class")  # a copy's row adds "tile" and "tiles", tile_of's place of it
INDEX_COLUMNS = ("path", "tile", "tiles", "id", "sha256", "class")  # a split's index: every image's place


def set_order(row: dict) -> str:
    """Where a row stands in a set and a split's index: as if each image had a file of its own, <its id>.png in its
    class folder, as images and copies had before sheets and strips; so sets list their examples, and runs train
    on them, in the order they always have."""
    folder = Path(row["path"]) if row.get("tile") in (None, "") else Path(row["path"]).parent
    return f"{folder.as_posix()}/{row['id']}.png"


def located(rows: list[dict]) -> list[dict]:
    """Rows with every image's file and place: an original's (a class folder of sheets) from its split's index."""
    indexes: dict[Path, dict[str, dict]] = {}
    placed = []
    for row in rows:
        if row.get("tile") in (None, ""):
            split = Path(row["path"]).parent
            if split not in indexes:
                indexes[split] = {entry["id"]: entry for entry in read_csv(split / SPLIT_INDEX)}
            row = indexes[split][row["id"]]
        placed.append(row)
    return placed


def read_tile(row: dict, files: dict[str, np.ndarray] | None = None) -> np.ndarray:
    """The pixels of a located row (an index's, or a copy's); `files` keeps the last file decoded across calls, for
    rows that share it."""
    files = {} if files is None else files
    if row["path"] not in files:
        files.clear()  # rows come in set order, a file's together: keep one decoded file at a time
        files[row["path"]] = read_image(Path(row["path"]))
    return tile_of(files[row["path"]], int(row["tile"]), int(row["tiles"]))
