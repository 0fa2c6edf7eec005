"""The one resampling of a copy: bilinear, through one output-to-input matrix, on OpenCV's warp kernel.

Fill modes follow ImageDataGenerator (SciPy's rules), so the `seed` policy's
copies stay within a grey level of ImageDataGenerator's own. The kernel is the
fastest the dependencies offer, and two tricks below keep it on its fast path.
"""

import math

import cv2
import numpy as np

BORDERS = {  # "constant" resamples with replicated edges, then fills what maps outside (see `warp`)
    "nearest": cv2.BORDER_REPLICATE,
    "constant": cv2.BORDER_REPLICATE,
    "reflect": cv2.BORDER_REFLECT,
    "wrap": cv2.BORDER_WRAP,
}


def outside(matrix: np.ndarray, height: int, width: int) -> np.ndarray:
    """Output pixels whose source point lies outside the input, where ImageDataGenerator's `constant` fills."""
    xs, ys = np.arange(width, dtype=np.float64)[None, :], np.arange(height, dtype=np.float64)[:, None]
    sx, sy, sw = (row[0] * xs + row[1] * ys + row[2] for row in matrix)
    sx, sy = sx / sw, sy / sw
    return (sx < 0) | (sx > width - 1) | (sy < 0) | (sy > height - 1)


def pad_to_reach(pixels: np.ndarray, matrix: np.ndarray, border: int) -> tuple[np.ndarray, np.ndarray]:
    """The input padded (with the fill's own rule) as far as an affine `matrix` reaches outside it, and the matrix to
    match.

    OpenCV's bilinear warp takes a slow per-pixel path for every point whose
    neighbours are not all inside the input, unless the border is constant;
    padding first keeps them all inside: a quarter less time for the same
    values (up to fixed-point rounding: at most one grey level).
    """
    height, width = pixels.shape[:2]
    (a, b, c), (d, e, f) = matrix[:2].tolist()
    corners = [(0, 0), (width - 1, 0), (0, height - 1), (width - 1, height - 1)]
    xs, ys = [a * x + b * y + c for x, y in corners], [d * x + e * y + f for x, y in corners]
    left, right = max(0, math.ceil(-min(xs))) + 1, max(0, math.ceil(max(xs) - width + 1)) + 1
    top, bottom = max(0, math.ceil(-min(ys))) + 1, max(0, math.ceil(max(ys) - height + 1)) + 1
    shifted = np.array([[a, b, c + left], [d, e, f + top]])
    return cv2.copyMakeBorder(pixels, top, bottom, left, right, border), shifted


def warp(pixels: np.ndarray, matrix: np.ndarray, fill: str) -> np.ndarray:
    """Resample once, bilinearly, through an output-to-input (x, y) matrix; uint8 in, uint8 out.

    RGB goes through RGBA: OpenCV's bilinear warp has a vectorised path for four
    channels and not for three, about twice as fast, with the same values.
    """
    height, width = pixels.shape[:2]
    flags, border = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, BORDERS[fill]
    rgb = pixels.ndim == 3
    source = cv2.cvtColor(pixels, cv2.COLOR_RGB2RGBA) if rgb else pixels
    if matrix[2, 0] == 0 and matrix[2, 1] == 0 and matrix[2, 2] == 1:
        source, shifted = pad_to_reach(source, matrix, border)
        out = cv2.warpAffine(source, shifted, (width, height), flags=flags, borderMode=border)
    else:  # a perspective map may reach infinitely far: no padding
        out = cv2.warpPerspective(source, matrix, (width, height), flags=flags, borderMode=border)
    out = cv2.cvtColor(out, cv2.COLOR_RGBA2RGB) if rgb else out
    if fill == "constant":
        out[outside(matrix, height, width)] = 0
    return out
