"""An image's augmented copies, as a function of its pixels' hash: shared by the augment stage and the online arm.

Copy j of an image is `make_copy(pixels, its pixel hash, j, params)`, a function of (pixel hash, j,
augment.seed, policy) alone, so copies are the same whatever the order, batch or process that made them.
"""

import ast
import hashlib
import io
import json
from importlib.metadata import version
from pathlib import Path

import numpy as np

from tasks.common import files, policies, transforms, warps
from tasks.common.files import jpeg_bytes, pixel_sha256, png_bytes, read_image
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


def encode(pixels: np.ndarray, params: AugmentParams) -> tuple[bytes, str]:
    """(file bytes, pixel hash of what a reader decodes from them)."""
    if params.format == "png":
        return png_bytes(pixels, params.png_compress_level), pixel_sha256(pixels)
    data = jpeg_bytes(pixels, params.jpeg_quality)
    return data, pixel_sha256(read_image(io.BytesIO(data)))


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
    """Everything a copy's bytes depend on besides its source: settings, the code that draws and encodes it, and the
    versions of the libraries that resample and encode. A docstring or comment edit leaves it, and every copy, as it is."""
    encoding = {"png": params.png_compress_level, "jpeg": params.jpeg_quality}[params.format]
    settings = {
        "policy": params.policy.model_dump(mode="json"),
        "seed": params.seed,
        "format": params.format,
        "encoding": encoding,
    }
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode())
    for module in (Path(__file__), *(Path(code.__file__) for code in (policies, transforms, warps, files))):
        digest.update(code_fingerprint(module).encode())
    for package in ("opencv-python-headless", "pillow", "numpy"):
        digest.update(version(package).encode())
    return digest.hexdigest()
