"""An image's augmented copies, as a function of its pixels' hash: shared by the augment stage and the online arm.

Copy j of an image is `make_copy(pixels, its pixel hash, j, params)`, a function of (pixel hash, j,
augment.seed, policy) alone, so copies are the same whatever the order, batch or process that made them.
An image's copies are stored together, side by side in one PNG (its strip): one file per training image.
"""

import ast
import hashlib
import io
import json
from importlib.metadata import version
from pathlib import Path

import numpy as np

from tasks.common import files, policies, transforms, warps
from tasks.common.files import jpeg_bytes, png_bytes, read_image, strip_of
from tasks.common.params import AugmentParams
from tasks.common.policies import fill_mode
from tasks.common.warps import warp

IDENTITY = np.eye(3)


def copy_rng(seed: int, image_sha256: str, copy: int) -> np.random.Generator:
    """NumPy's default generator seeded by (seed, the hash's first 128 bits as four 32-bit words, copy)."""
    words = [seed, *(int(image_sha256[start : start + 8], 16) for start in range(0, 32, 8)), copy]
    return np.random.default_rng(np.array(words, dtype=np.uint32))


def make_copy(pixels: np.ndarray, image_sha256: str, copy: int, params: AugmentParams) -> np.ndarray:
    """Copy `copy` of an image (HxW grey or HxWx3 RGB uint8) under params' seed and policy; same shape and dtype."""
    height, width = pixels.shape[:2]
    matrix, pixel_ops = params.policy.draw(copy_rng(params.seed, image_sha256, copy), height, width)
    out = pixels.copy() if (matrix == IDENTITY).all() else warp(pixels, matrix, fill_mode(params.policy))
    for operation in pixel_ops:
        out = operation(out)
    return out


def as_stored(pixels: np.ndarray, params: AugmentParams) -> np.ndarray:
    """A copy's pixels as its strip holds them: as made for png; for jpeg, what a reader decodes from the copy saved
    alone as a JPEG file at jpeg_quality. A JPEG strip would not do: its 8x8 blocks straddle the copies' borders and
    its colour is upsampled across them, so a copy's pixels would depend on its neighbours (docs/augmentation.md)."""
    if params.format == "png":
        return pixels
    return read_image(io.BytesIO(jpeg_bytes(pixels, params.jpeg_quality)))


def encode_strip(copies: list[np.ndarray], params: AugmentParams) -> bytes:
    """One image's copies (as_stored), side by side in one lossless PNG: the bytes of its strip file."""
    return png_bytes(strip_of(copies), params.png_compress_level)


def code_fingerprint(path: Path) -> str:
    """A module's code as Python reads it: its syntax tree without docstrings, so comments and docstrings never count,
    nor the descriptions of the settings that sit beside the code that uses them (tasks/common/policies.py)."""
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            node.keywords = [keyword for keyword in node.keywords if keyword.arg != "description"]
        body = getattr(node, "body", None)
        if (
            isinstance(body, list)
            and body
            and isinstance(body[0], ast.Expr)
            and isinstance(body[0].value, ast.Constant)
        ):
            if isinstance(body[0].value.value, str):
                node.body = body[1:] or [ast.Pass()]
    return hashlib.sha256(ast.dump(tree).encode()).hexdigest()


def signature(params: AugmentParams) -> str:
    """Everything a strip's bytes depend on besides its source and its number of copies: settings, the code that draws
    and encodes it, and the versions of the libraries that resample and encode. A docstring or comment edit leaves
    it, and every strip, as it is."""
    settings = {
        "policy": params.policy.model_dump(mode="json"),
        "seed": params.seed,
        "format": params.format,
        "png_compress_level": params.png_compress_level,  # every strip is a PNG
        "jpeg_quality": params.jpeg_quality if params.format == "jpeg" else None,
    }
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode())
    for module in (Path(__file__), *(Path(code.__file__) for code in (policies, transforms, warps, files))):
        digest.update(code_fingerprint(module).encode())
    for package in ("opencv-python-headless", "pillow", "numpy"):
        digest.update(version(package).encode())
    return digest.hexdigest()
