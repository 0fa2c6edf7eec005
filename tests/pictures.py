"""Small but real photographs-to-be for the ingest tests: distinct, seeded drawings saved by Pillow."""

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw


def picture(seed: int, shape: str = "ellipse", size: tuple[int, int] = (48, 40)) -> Image.Image:
    """An RGB drawing of a few filled shapes over a gradient, different for every seed."""
    rng = np.random.default_rng(seed)
    width, height = size
    ramp = np.linspace(0, 1, width)[None, :, None] * rng.integers(0, 256, 3) + rng.integers(0, 128, 3)
    image = Image.fromarray(np.clip(np.repeat(ramp, height, axis=0), 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(image)
    for _ in range(4):
        x, y = rng.integers(0, width - 8), rng.integers(0, height - 8)
        box = (int(x), int(y), int(x + rng.integers(6, width // 2)), int(y + rng.integers(6, height // 2)))
        getattr(draw, shape)(box, fill=tuple(int(v) for v in rng.integers(0, 256, 3)))
    return image


def save(image: Image.Image, path: Path, **options) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, **options)
    return path


def class_folders(
    root: Path,
    classes: dict[str, str],
    count: int,
    first_seed: int = 0,
    suffix: str = ".jpg",
    size: tuple[int, int] = (48, 40),
) -> Path:
    """root/<class>/<class>.<n><suffix> for each class name -> shape, `count` images each."""
    for offset, (name, shape) in enumerate(sorted(classes.items())):
        for n in range(count):
            save(picture(first_seed + 10_000 * offset + n, shape, size), root / name / f"{name}.{n}{suffix}")
    return root
