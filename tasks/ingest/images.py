"""One user image file into augflow's normal form, decoded once and cached by content.

Pillow recognises the format from the bytes, never the name. The normal form
is one policy, so the same file always gives the same pixels: EXIF orientation
applied; transparency composited onto white; 16-bit samples scaled to 8 bits;
every mode converted to RGB; centre-cropped to `ingest.image_size`'s aspect
ratio and resized with Lanczos (Pillow's ImageOps.fit); with `image_size` null,
the images' own size (own_size). The grayscale form is
the luma (ITU-R 601-2) of that RGB image.

A file's result, or the reason it was refused, is cached under the sha256 of
its bytes and of the settings that shape it, so a grown folder decodes only its
new or changed files. The cache lives outside DVC's outputs, which DVC deletes
before rerunning the stage.
"""

import hashlib
import io
import json
from collections import Counter
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from tasks.common.files import pixel_sha256, png_bytes, write_bytes_atomic, write_text_atomic
from tasks.common.paths import INGEST_CACHE_DIR

FORMATS = {"JPEG", "MPO", "PNG", "BMP", "GIF", "TIFF", "WEBP"}  # MPO: the JPEG variant phones write
SIXTEEN_BIT = {"I", "I;16", "I;16B", "I;16L", "I;16N"}
NORMAL_FORM_VERSION = 1  # bump when the policy above changes, so cached results are recomputed
Image.MAX_IMAGE_PIXELS = None  # ingest.max_pixels is enforced below, from the header, before decoding


class Refused(Exception):
    """A file that cannot be ingested: a short reason code and a sentence for the report."""

    def __init__(self, reason: str, detail: str):
        super().__init__(detail)
        self.reason, self.detail = reason, detail


def to_rgb(image: Image.Image) -> Image.Image:
    """Any mode as 8-bit RGB: 16-bit samples scaled (not clipped), transparency composited onto white."""
    if image.mode in SIXTEEN_BIT:
        wide = np.asarray(image, dtype=np.float64) / 257
        image = Image.fromarray(np.clip(np.rint(wide), 0, 255).astype(np.uint8))
    elif image.mode == "F":
        image = Image.fromarray(np.clip(np.rint(np.asarray(image)), 0, 255).astype(np.uint8))
    if image.mode in ("RGBA", "LA", "PA", "La", "RGBa") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        return Image.alpha_composite(Image.new("RGBA", rgba.size, "white"), rgba).convert("RGB")
    return image.convert("RGB")


def dhash(image: Image.Image) -> int:
    """64-bit difference hash: whether each of 8x8 luma cells is brighter than its left neighbour."""
    cells = np.asarray(image.convert("L").resize((9, 8), Image.Resampling.LANCZOS), dtype=np.int16)
    return int.from_bytes(np.packbits(cells[:, 1:] > cells[:, :-1]).tobytes(), "big")


# What Pillow raises on bytes it cannot decode (the exceptions its own fuzz tests accept): the file's fault.
# Anything else raised while decoding, or by augflow's code after it, is a bug to surface, not a file to refuse.
UNREADABLE = (
    OSError,
    SyntaxError,
    ValueError,
    EOFError,
    MemoryError,
    NotImplementedError,
    OverflowError,
    Image.DecompressionBombError,
)


def _decode(data: bytes, max_pixels: int) -> Image.Image:
    """The upright image as Pillow decodes it, after checking its format and size from the header alone."""
    image = Image.open(io.BytesIO(data))
    if image.format not in FORMATS:
        raise Refused("unsupported_format", f"{image.format} images are not supported: convert it to PNG or JPEG")
    width, height = image.size
    if width * height > max_pixels:
        raise Refused(
            "too_many_pixels", f"{width}x{height} pixels is over ingest.max_pixels ({max_pixels}); not decoded"
        )
    image.load()
    return ImageOps.exif_transpose(image)


# The longest side an image keeps when ingest.image_size is null: the classic demonstration's 150x150 photos keep
# their size, and a set of 500 such images with 20 copies each decodes to under 1 GB of uint8 pixels.
OWN_SIZE_CAP = 160
# EXIF orientations that turn the image a quarter: its upright height is the stored width.
QUARTER_TURNS = {5, 6, 7, 8}


def upright_size(path: Path, max_pixels: int) -> tuple[int, int] | None:
    """(height, width) of the image at path as it will be shown upright, from its header alone; None for a file
    that ingest will refuse anyway (unreadable, not an image, too many pixels)."""
    try:
        with Image.open(path) as image:
            width, height = image.size
            turned = image.getexif().get(0x0112) in QUARTER_TURNS
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        return None
    if width * height > max_pixels:
        return None
    return (width, height) if turned else (height, width)


def own_size(sizes: list[tuple[int, int]]) -> tuple[int, int]:
    """The size ingest.image_size null stands for: the most common (height, width), largest first on ties, scaled
    to fit OWN_SIZE_CAP on its longer side."""
    if not sizes:
        return (OWN_SIZE_CAP, OWN_SIZE_CAP)
    counts = Counter(sizes)
    height, width = max(counts, key=lambda size: (counts[size], size))
    scale = min(1.0, OWN_SIZE_CAP / max(height, width))
    return (max(1, round(height * scale)), max(1, round(width * scale)))


def normalise(data: bytes, image_size: tuple[int, int], max_pixels: int) -> tuple[dict, dict[str, bytes]]:
    """(facts, PNG bytes per colour mode) for an image file's bytes; Refused if it cannot be used."""
    if not data:
        raise Refused("empty", "empty file (0 bytes)")
    try:
        decoded = _decode(data, max_pixels)
    except UnidentifiedImageError:
        raise Refused("not_an_image", "not an image Pillow recognises (JPEG, PNG, BMP, GIF, TIFF, WebP)") from None
    except UNREADABLE as exc:
        raise Refused("corrupt", f"corrupt or truncated image ({exc})") from None
    upright = to_rgb(decoded)
    content = pixel_sha256(np.asarray(upright))
    rgb = ImageOps.fit(upright, (image_size[1], image_size[0]), Image.Resampling.LANCZOS)
    pixels = {"rgb": np.asarray(rgb), "grayscale": np.asarray(rgb.convert("L"))}
    facts = {
        "content": content,
        "dhash": dhash(rgb),
        "grey": bool((pixels["rgb"] == pixels["rgb"][..., :1]).all()),
        "sha256": {mode: pixel_sha256(array) for mode, array in pixels.items()},
    }
    return facts, {mode: png_bytes(array) for mode, array in pixels.items()}


def cache_key(data: bytes, image_size: tuple[int, int], max_pixels: int) -> str:
    settings = f"augflow-normal-form:{NORMAL_FORM_VERSION}:{image_size[0]}x{image_size[1]}:{max_pixels}:".encode()
    return hashlib.sha256(settings + data).hexdigest()


def cached_png(key: str, color_mode: str, cache_dir: Path = INGEST_CACHE_DIR) -> bytes:
    return (cache_dir / key[:2] / f"{key}.{color_mode}.png").read_bytes()


def examine(path: Path, image_size: tuple[int, int], max_pixels: int, cache_dir: Path = INGEST_CACHE_DIR) -> dict:
    """The cached facts for the file at path, normalising it first if its bytes are new.

    Facts are {"key", "content", "dhash", "grey", "sha256"}, or {"reason", "detail"} for a refused file.
    """
    try:
        data = path.read_bytes()
    except OSError as exc:
        return {"reason": "unreadable", "detail": f"cannot be read ({exc.strerror})"}
    key = cache_key(data, image_size, max_pixels)
    record = cache_dir / key[:2] / f"{key}.json"
    if record.is_file():
        return json.loads(record.read_text())
    try:
        facts, pngs = normalise(data, image_size, max_pixels)
    except Refused as refused:
        facts = {"reason": refused.reason, "detail": refused.detail}
    else:
        for mode, encoded in pngs.items():
            write_bytes_atomic(record.with_name(f"{key}.{mode}.png"), encoded)
    facts = {"key": key} | facts
    write_text_atomic(record, json.dumps(facts, sort_keys=True))  # written last: its presence vouches for the PNGs
    return facts
