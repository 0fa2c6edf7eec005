"""Writing outputs safely and reading images back: what every stage shares.

Images are stored several to a file, side by side: ingest's sheets hold a run of a split's images of one class,
augment's strips one image's copies. A split's index (data/raw/<split>/index.csv) says which sheet and place hold
each of its images. A set file names each image by id and pixel hash, so it says exactly which pixels every
example is: a copy with its strip and place there; an original with its class folder of sheets alone, where the
index finds it, so that a set changes only when its own images do, not when a sheet gains another image.
"""

import csv
import hashlib
import io
import os
import shutil
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from PIL import Image

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


def strip_of(tiles: list[np.ndarray]) -> np.ndarray:
    """Equal-shaped images side by side, left to right: one picture holding them all."""
    return np.concatenate(tiles, axis=1)


def tile_of(strip: np.ndarray, index: int, tiles: int) -> np.ndarray:
    """Image `index` of the `tiles` that strip_of put side by side (a view, no copy)."""
    width = strip.shape[1] // tiles
    return strip[:, index * width : (index + 1) * width]


def pixel_sha256(pixels: np.ndarray) -> str:
    """Content hash of an image's decoded pixels (shape included), independent of file encoding."""
    header = "x".join(str(n) for n in pixels.shape).encode() + b":"
    return hashlib.sha256(header + np.ascontiguousarray(pixels, dtype=np.uint8).tobytes()).hexdigest()


def png_bytes(pixels: np.ndarray, compress_level: int = 6) -> bytes:
    """Encode an HxW (grey) or HxWx3 (RGB) uint8 array as PNG; the same pixels always give the same bytes.

    compress_level trades size for speed: 1 encodes 2-3x faster than Pillow's default 6, files about a fifth larger.
    """
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG", compress_level=compress_level)
    return buffer.getvalue()


def jpeg_bytes(pixels: np.ndarray, quality: int) -> bytes:
    """Encode as baseline JPEG (lossy: decoded pixels differ from `pixels`); deterministic for one libjpeg."""
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def read_image(path: Path | io.BytesIO) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image)


def read_tile(row: dict, files: dict[str, np.ndarray] | None = None) -> np.ndarray:
    """The pixels of a located row (an index's, or a copy's); `files` keeps the last file decoded across calls, for
    rows that share it."""
    files = {} if files is None else files
    if row["path"] not in files:
        files.clear()  # rows come in set order, a file's together: keep one decoded file at a time
        files[row["path"]] = read_image(Path(row["path"]))
    return tile_of(files[row["path"]], int(row["tile"]), int(row["tiles"]))


@contextmanager
def naming(path: Path, temporary: Path) -> Iterator[None]:
    """An OSError about no file (a write() on a full disk) or about the temporary one names `path`, the output the
    user knows."""
    try:
        yield
    except OSError as exc:
        if exc.filename is None or str(exc.filename).startswith(str(temporary)):
            exc.filename = str(path)
        raise


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside `path`; rename it into place only if the block succeeds."""
    path = Path(path)
    temporary = path.with_name(f".{path.stem}.partial{path.suffix}")
    try:
        with naming(path, temporary):
            path.parent.mkdir(parents=True, exist_ok=True)
            yield temporary
            os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def write_bytes_atomic(path: Path, data: bytes) -> None:
    with atomic_path(path) as temporary:
        temporary.write_bytes(data)


def write_text_atomic(path: Path, text: str) -> None:
    write_bytes_atomic(path, text.encode())


@contextmanager
def atomic_directory(path: Path) -> Iterator[Path]:
    """Yield an empty staging directory; on success it replaces `path` as a whole."""
    path = Path(path)
    staging = path.with_name(f".{path.name}.partial")
    shutil.rmtree(staging, ignore_errors=True)
    try:
        with naming(path, staging):
            staging.mkdir(parents=True)
            yield staging
            shutil.rmtree(path, ignore_errors=True)
            os.replace(staging, path)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def write_csv_atomic(path: Path, columns: Iterable[str], rows: Iterable[dict]) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(columns), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_text_atomic(path, buffer.getvalue())


def read_csv(path: Path) -> list[dict]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))
