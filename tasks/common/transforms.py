"""The `custom` policy's transforms, named and parametrised like Keras 3's augmentation layers: each one's settings
(checked in params.yaml) and what it draws for one copy, side by side.

A geometric transform draws a 3x3 matrix mapping output (x, y) pixel centres to input ones; `compose` multiplies a
copy's matrices into one, so the image is resampled once however many it holds. The others draw a pixel operation
(colour, blur, erasing), which follows the resampling in order. Factors are fractions: the strength of each draw is
uniform in [-factor, +factor].
"""

from collections.abc import Callable
from typing import Annotated, Literal

import cv2
import numpy as np
from pydantic import AfterValidator, Field

from tasks.common.schema import Fraction, Strict, ordered

PixelOp = Callable[[np.ndarray], np.ndarray]


def flip_matrix(horizontal: bool, vertical: bool, height: int, width: int) -> np.ndarray:
    """Output-to-input map of a left-right and/or top-bottom flip."""
    x_scale, x_shift = (-1.0, width - 1) if horizontal else (1.0, 0)
    y_scale, y_shift = (-1.0, height - 1) if vertical else (1.0, 0)
    return np.array([[x_scale, 0, x_shift], [0, y_scale, y_shift], [0, 0, 1]])


def lookup(pixels: np.ndarray, table: np.ndarray) -> np.ndarray:
    """Map every value through a float table, 256 entries (per channel: 256 x channels), rounded and clipped once."""
    return cv2.LUT(pixels, to_uint8(table).reshape(256, 1, -1))


def to_uint8(values: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(values), 0, 255).astype(np.uint8)


def about_centre(matrix: np.ndarray, height: int, width: int) -> np.ndarray:
    centre_x, centre_y = (width - 1) / 2, (height - 1) / 2
    to_centre = np.array([[1, 0, centre_x], [0, 1, centre_y], [0, 0, 1]])
    from_centre = np.array([[1, 0, -centre_x], [0, 1, -centre_y], [0, 0, 1]])
    return to_centre @ matrix @ from_centre


def symmetric(rng: np.random.Generator, factor: float) -> float:
    return rng.uniform(-factor, factor)


def _odd(value: int) -> int:
    """Must be odd."""
    if value % 2 == 0:
        raise ValueError("use an odd kernel size")
    return value


Odd = Annotated[int, Field(ge=3, le=31), AfterValidator(_odd)]


class RandomFlip(Strict):
    name: Literal["RandomFlip"]
    mode: Literal["horizontal", "vertical", "horizontal_and_vertical"] = Field(
        "horizontal", description="Which flips may happen, each with probability 1/2."
    )

    def draw(self, rng: np.random.Generator, height: int, width: int) -> np.ndarray:
        horizontal = self.mode != "vertical" and rng.uniform() < 0.5
        vertical = self.mode != "horizontal" and rng.uniform() < 0.5
        return flip_matrix(horizontal, vertical, height, width)


class RandomRotation(Strict):
    name: Literal["RandomRotation"]
    factor: Annotated[float, Field(ge=0.0, le=0.5)] = Field(0.1, description="Fraction of a full turn.")

    def draw(self, rng: np.random.Generator, height: int, width: int) -> np.ndarray:
        angle = symmetric(rng, self.factor) * 2 * np.pi
        cos, sin = np.cos(angle), np.sin(angle)
        return about_centre(np.array([[cos, -sin, 0], [sin, cos, 0], [0, 0, 1]]), height, width)


class RandomZoom(Strict):
    name: Literal["RandomZoom"]
    height_factor: Annotated[float, Field(ge=0.0, lt=1.0)] = Field(
        0.1, description="A positive draw zooms out, a negative one in."
    )
    width_factor: Annotated[float, Field(ge=0.0, lt=1.0)] | None = Field(None, description="null: the height's draw.")

    def draw(self, rng: np.random.Generator, height: int, width: int) -> np.ndarray:
        zoom_y = 1 + symmetric(rng, self.height_factor)
        zoom_x = zoom_y if self.width_factor is None else 1 + symmetric(rng, self.width_factor)
        return about_centre(np.diag([zoom_x, zoom_y, 1.0]), height, width)


class RandomTranslation(Strict):
    name: Literal["RandomTranslation"]
    height_factor: Fraction = Field(0.1, description="Fraction of the height.")
    width_factor: Fraction = Field(0.1, description="Fraction of the width.")

    def draw(self, rng: np.random.Generator, height: int, width: int) -> np.ndarray:
        dy, dx = symmetric(rng, self.height_factor) * height, symmetric(rng, self.width_factor) * width
        return np.array([[1, 0, -dx], [0, 1, -dy], [0, 0, 1.0]])


class RandomShear(Strict):
    name: Literal["RandomShear"]
    x_factor: Fraction = Field(0.1, description="Shear coefficient along x (tan of the angle).")
    y_factor: Fraction = Field(0.0, description="Shear coefficient along y.")

    def draw(self, rng: np.random.Generator, height: int, width: int) -> np.ndarray:
        sx, sy = symmetric(rng, self.x_factor), symmetric(rng, self.y_factor)
        return about_centre(np.array([[1, sx, 0], [sy, 1, 0], [0, 0, 1.0]]), height, width)


class RandomPerspective(Strict):
    name: Literal["RandomPerspective"]
    factor: Fraction = Field(1.0, description="Probability of applying it.")
    scale: Fraction = Field(0.2, description="Each corner moves by up to scale x half the image size.")

    def draw(self, rng: np.random.Generator, height: int, width: int) -> np.ndarray | None:
        if rng.uniform() >= self.factor:
            return None
        corners = np.array([[0, 0], [width - 1, 0], [width - 1, height - 1], [0, height - 1]], dtype=np.float32)
        moved = corners + rng.uniform(-self.scale, self.scale, size=(4, 2)) * np.array([width, height]) / 2
        return cv2.getPerspectiveTransform(corners, moved.astype(np.float32)).astype(np.float64)


class RandomBrightness(Strict):
    name: Literal["RandomBrightness"]
    factor: Fraction = Field(0.2, description="Adds up to factor x 255.")

    def draw(self, rng: np.random.Generator, height: int, width: int) -> PixelOp:
        delta = symmetric(rng, self.factor) * 255
        return lambda pixels: lookup(pixels, np.arange(256) + delta)


class RandomContrast(Strict):
    name: Literal["RandomContrast"]
    factor: Fraction = Field(0.2, description="Distance to each channel's mean scaled by [1 - factor, 1 + factor].")

    def draw(self, rng: np.random.Generator, height: int, width: int) -> PixelOp:
        scale = 1 + symmetric(rng, self.factor)

        def contrast(pixels):
            mean = np.array(cv2.mean(pixels)[: 1 if pixels.ndim == 2 else 3])
            return lookup(pixels, (np.arange(256)[:, None] - mean) * scale + mean)

        return contrast


class RandomSaturation(Strict):
    name: Literal["RandomSaturation"]
    factor: Fraction = Field(0.2, description="Saturation scaled by [1 - factor, 1 + factor]; grey images unchanged.")

    def draw(self, rng: np.random.Generator, height: int, width: int) -> PixelOp:
        scale = 1 + symmetric(rng, self.factor)

        def saturation(pixels):  # a blend with the image's own grey version (luma 0.299 R + 0.587 G + 0.114 B)
            if pixels.ndim == 2:
                return pixels
            grey = cv2.cvtColor(cv2.cvtColor(pixels, cv2.COLOR_RGB2GRAY), cv2.COLOR_GRAY2RGB)
            return cv2.addWeighted(pixels, scale, grey, 1 - scale, 0)

        return saturation


class RandomHue(Strict):
    name: Literal["RandomHue"]
    factor: Fraction = Field(0.1, description="Hue turned by up to factor x 180 degrees; grey images unchanged.")

    def draw(self, rng: np.random.Generator, height: int, width: int) -> PixelOp:
        turn = symmetric(rng, self.factor) * 180  # degrees

        def hue(pixels):
            if pixels.ndim == 2:
                return pixels
            hsv = cv2.cvtColor(pixels.astype(np.float32) / 255, cv2.COLOR_RGB2HSV)
            hsv[..., 0] = (hsv[..., 0] + turn) % 360
            return to_uint8(cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB) * 255)

        return hue


class RandomGaussianBlur(Strict):
    name: Literal["RandomGaussianBlur"]
    factor: Fraction = Field(1.0, description="Probability of applying it.")
    kernel_size: Odd = Field(3, description="Side of the blur kernel, in pixels.")
    sigma: Annotated[float, Field(gt=0.0, le=10.0)] = Field(
        1.0, description="Each copy's sigma is drawn in (0, sigma]."
    )

    def draw(self, rng: np.random.Generator, height: int, width: int) -> PixelOp | None:
        if rng.uniform() >= self.factor:
            return None
        sigma = self.sigma * (1 - rng.uniform())  # in (0, sigma]
        return lambda pixels: cv2.GaussianBlur(pixels, (self.kernel_size, self.kernel_size), sigma, sigmaY=sigma)


class RandomErasing(Strict):
    name: Literal["RandomErasing"]
    factor: Fraction = Field(1.0, description="Probability of applying it.")
    scale: Annotated[tuple[Fraction, Fraction], AfterValidator(ordered)] = Field(
        (0.02, 0.33), description="[low, high]: the erased area, as a fraction of the image's, is drawn in it."
    )
    fill_value: Annotated[int, Field(ge=0, le=255)] | None = Field(
        None, description="Grey level of the erased patch; null: random noise."
    )

    def draw(self, rng: np.random.Generator, height: int, width: int) -> PixelOp | None:
        if rng.uniform() >= self.factor:
            return None
        area = rng.uniform(*self.scale) * height * width
        aspect = np.exp(rng.uniform(np.log(0.3), np.log(1 / 0.3)))
        tall = min(height, max(1, round(np.sqrt(area * aspect))))
        wide = min(width, max(1, round(np.sqrt(area / aspect))))
        top, left = rng.integers(0, height - tall + 1), rng.integers(0, width - wide + 1)
        noise_seed = rng.integers(2**32)

        def erase(pixels):
            out = pixels.copy()
            patch = out[top : top + tall, left : left + wide]
            fill = np.random.default_rng(noise_seed).integers(0, 256, size=patch.shape, dtype=np.uint8)
            patch[...] = fill if self.fill_value is None else self.fill_value
            return out

        return erase


CustomTransform = Annotated[
    RandomFlip
    | RandomRotation
    | RandomZoom
    | RandomTranslation
    | RandomShear
    | RandomPerspective
    | RandomBrightness
    | RandomContrast
    | RandomSaturation
    | RandomHue
    | RandomGaussianBlur
    | RandomErasing,
    Field(discriminator="name"),
]


def compose(transforms: list, rng: np.random.Generator, height: int, width: int) -> tuple[np.ndarray, list[PixelOp]]:
    """One copy's fused output-to-input (x, y) matrix and its pixel operations, each transform drawn in turn."""
    matrix, pixel_ops = np.eye(3), []
    for transform in transforms:
        step = transform.draw(rng, height, width)
        if isinstance(step, np.ndarray):
            matrix = matrix @ step
        elif step is not None:
            pixel_ops.append(step)
    return matrix, pixel_ops
