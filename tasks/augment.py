"""Stage `augment`: write `augment.copies` transformed copies of every training image.

The transforms and their parameters mean what they mean in Keras'
ImageDataGenerator (the classic demonstration's tool), so existing settings
carry over: rotation, shift, shear and zoom are composed into one affine
matrix and the image is resampled once, bilinearly, with the chosen fill mode;
then an optional horizontal flip.

Copy j of an image is drawn from a random stream seeded by (augment.seed,
the image's pixel hash, j) alone, so the files are byte-identical whatever the
order, batch or number of workers that produced them.
"""

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw
from scipy import ndimage

from tasks.errors import run_cli
from tasks.files import (
    SET_COLUMNS,
    atomic_directory,
    atomic_path,
    pixel_sha256,
    png_bytes,
    read_csv,
    read_image,
    write_csv_atomic,
)
from tasks.params import AugmentParams, load_params

ORIGINAL_SET = Path("data/sets/original.csv")
AUGMENTED_DIR = Path("data/augmented")
AUGMENTED_SET = Path("data/sets/augmented.csv")
ONLINE_SET = Path("data/sets/online.csv")
PREVIEW = Path("reports/augment_preview.png")


def copy_rng(seed: int, image_sha256: str, copy: int) -> np.random.Generator:
    return np.random.default_rng([seed, int(image_sha256[:32], 16), copy])


@dataclass(frozen=True)
class Transform:
    """One draw of ImageDataGenerator's random transform, in its own parameter names and units."""

    theta: float  # rotation, degrees
    tx: float  # shift in pixels, drawn from height_shift_range
    ty: float  # shift in pixels, drawn from width_shift_range
    shear: float  # degrees
    zx: float
    zy: float
    flip_horizontal: bool


def random_transform(rng: np.random.Generator, params: AugmentParams, height: int, width: int) -> Transform:
    return Transform(
        theta=rng.uniform(-params.rotation_range, params.rotation_range),
        tx=rng.uniform(-params.height_shift_range, params.height_shift_range) * height,
        ty=rng.uniform(-params.width_shift_range, params.width_shift_range) * width,
        shear=rng.uniform(-params.shear_range, params.shear_range),
        zx=rng.uniform(1 - params.zoom_range, 1 + params.zoom_range),
        zy=rng.uniform(1 - params.zoom_range, 1 + params.zoom_range),
        flip_horizontal=bool(params.horizontal_flip and rng.uniform() < 0.5),
    )


def affine_matrix(transform: Transform, height: int, width: int) -> np.ndarray:
    """The 3x3 matrix mapping output (row, col) to input (row, col), composed once.

    Built exactly as ImageDataGenerator builds it (rotation · shift · shear · zoom
    about the centre, in its (x, y) order, then swapped into array order), so a
    copy matches ImageDataGenerator's for the same parameters.
    """
    theta, shear = np.deg2rad(transform.theta), np.deg2rad(transform.shear)
    rotation = np.array([[np.cos(theta), -np.sin(theta), 0], [np.sin(theta), np.cos(theta), 0], [0, 0, 1]])
    shift = np.array([[1, 0, transform.tx], [0, 1, transform.ty], [0, 0, 1]])
    shearing = np.array([[1, -np.sin(shear), 0], [0, np.cos(shear), 0], [0, 0, 1]])
    zoom = np.diag([transform.zx, transform.zy, 1.0])
    centre_x, centre_y = height / 2 - 0.5, width / 2 - 0.5
    to_centre = np.array([[1, 0, centre_x], [0, 1, centre_y], [0, 0, 1]])
    from_centre = np.array([[1, 0, -centre_x], [0, 1, -centre_y], [0, 0, 1]])
    matrix = to_centre @ rotation @ shift @ shearing @ zoom @ from_centre
    swap = np.array([[0, 1, 0], [1, 0, 0], [0, 0, 1]])
    return swap @ matrix @ swap


def augment_image(pixels: np.ndarray, matrix: np.ndarray, flip: bool, fill_mode: str) -> np.ndarray:
    """Resample once through `matrix` (bilinear), then flip left-right if asked; uint8 in, uint8 out."""
    channels = pixels[..., None] if pixels.ndim == 2 else pixels
    resampled = np.stack(
        [
            ndimage.affine_transform(
                channel.astype(np.float32), matrix[:2, :2], offset=matrix[:2, 2], order=1, mode=fill_mode, cval=0.0
            )
            for channel in np.moveaxis(channels, -1, 0)
        ],
        axis=-1,
    )
    out = np.clip(np.rint(resampled), 0, 255).astype(np.uint8)
    if flip:
        out = out[:, ::-1]
    return out.reshape(pixels.shape)


def make_copy(pixels: np.ndarray, image_sha256: str, copy: int, params: AugmentParams) -> np.ndarray:
    """Copy number `copy` of an image: a function of (augment.seed, its pixel hash, copy, policy) alone."""
    height, width = pixels.shape[:2]
    transform = random_transform(copy_rng(params.seed, image_sha256, copy), params, height, width)
    return augment_image(pixels, affine_matrix(transform, height, width), transform.flip_horizontal, params.fill_mode)


def make_copies(pixels: np.ndarray, image_sha256: str, params: AugmentParams) -> list[np.ndarray]:
    return [make_copy(pixels, image_sha256, copy, params) for copy in range(params.copies)]


def write_online_set(training_set: list[dict], params: AugmentParams, path: Path) -> None:
    """The online arm's training set: the originals, with the policy and the draws per image (see tasks/online.py)."""
    policy = params.model_dump_json()
    rows = [{**row, "copies": params.copies, "policy": policy} for row in training_set]
    write_csv_atomic(path, (*SET_COLUMNS, "copies", "policy"), sorted(rows, key=lambda row: row["path"]))


def preview_rows(training_set: list[dict], count: int) -> set[str]:
    """Pick `count` originals for the preview, taking classes in turn so each one shows."""
    by_class: dict[str, list[str]] = {}
    for row in training_set:
        by_class.setdefault(row["class"], []).append(row["path"])
    chosen: list[str] = []
    for rank in range(max(len(paths) for paths in by_class.values())):
        chosen += [paths[rank] for _, paths in sorted(by_class.items()) if rank < len(paths)]
    return set(chosen[:count])


def draw_preview(examples: list[tuple[str, np.ndarray, list[np.ndarray]]], path: Path, scale: int = 4) -> None:
    """One row per original: its class, the original, then its copies; labelled like a before/after figure."""
    height, width = examples[0][1].shape[:2]
    cell_w, cell_h, label_w, header_h, pad = width * scale, height * scale, 110, 24, 6
    columns = 1 + max(len(copies) for _, _, copies in examples)
    sheet = Image.new("RGB", (label_w + columns * (cell_w + pad), header_h + len(examples) * (cell_h + pad)), "white")
    draw = ImageDraw.Draw(sheet)
    for column in range(columns):
        draw.text((label_w + column * (cell_w + pad), 4), "original" if column == 0 else f"copy {column}", fill="black")
    for row, (name, original, copies) in enumerate(examples):
        top = header_h + row * (cell_h + pad)
        draw.text((4, top + cell_h // 2 - 6), name, fill="black")
        for column, pixels in enumerate([original, *copies]):
            tile = Image.fromarray(pixels).convert("RGB").resize((cell_w, cell_h), Image.NEAREST)
            sheet.paste(tile, (label_w + column * (cell_w + pad), top))
    with atomic_path(path) as temporary:
        sheet.save(temporary, format="PNG")


def augment(
    params: AugmentParams,
    original_set: Path = ORIGINAL_SET,
    out_dir: Path = AUGMENTED_DIR,
    augmented_set: Path = AUGMENTED_SET,
    preview: Path = PREVIEW,
    online_set: Path = ONLINE_SET,
) -> int:
    """Write the copies, the training sets of the augmented and online arms, and the preview; return copies written."""
    training_set = read_csv(original_set)
    in_preview = preview_rows(training_set, params.preview_images)
    examples, rows = [], []
    with atomic_directory(out_dir) as staging:
        for row in training_set:
            pixels = read_image(Path(row["path"]))
            copies = make_copies(pixels, row["sha256"], params)
            stem = Path(row["path"]).stem
            for copy, augmented in enumerate(copies):
                relative = Path(row["class"]) / f"{stem}-{copy:03d}.png"
                (staging / relative).parent.mkdir(parents=True, exist_ok=True)
                (staging / relative).write_bytes(png_bytes(augmented))
                rows.append({"path": str(out_dir / relative), "sha256": pixel_sha256(augmented), "class": row["class"]})
            if row["path"] in in_preview:
                examples.append((row["class"], pixels, copies[: params.preview_copies]))
    write_csv_atomic(augmented_set, SET_COLUMNS, sorted(training_set + rows, key=lambda row: row["path"]))
    write_online_set(training_set, params, online_set)
    draw_preview(examples, preview)
    print(f"augment: {len(rows)} copies of {len(training_set)} training images in {out_dir}")
    return len(rows)


def main() -> None:
    augment(load_params().augment)


if __name__ == "__main__":
    run_cli(main)
