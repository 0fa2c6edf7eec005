"""What each augmentation policy draws for one copy: one geometric map, then pixel operations.

Every geometric transform becomes a 3x3 matrix mapping output (x, y) pixel
centres to input ones; a copy's matrices are multiplied into one, so the image
is resampled once however many geometric transforms a policy holds. Colour,
blur and erasing follow as pixel operations, in order. The `seed` policy draws
what ImageDataGenerator draws and builds its matrix the way it does.
"""

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

from tasks.common.params import (
    ColorPolicy,
    CustomPolicy,
    FlipPolicy,
    GeometricPolicy,
    Policy,
    RandAugmentPolicy,
    RandomBrightness,
    RandomContrast,
    RandomErasing,
    RandomFlip,
    RandomGaussianBlur,
    RandomHue,
    RandomPerspective,
    RandomRotation,
    RandomSaturation,
    RandomShear,
    RandomTranslation,
    RandomZoom,
    SeedPolicy,
)

PixelOp = Callable[[np.ndarray], np.ndarray]


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
    flip_vertical: bool = False
    brightness: float | None = None


def transform_matrix(transform: Transform, height: int, width: int) -> np.ndarray:
    """ImageDataGenerator's map as one output-to-input (x, y) matrix: its affine part, then its flips.

    ImageDataGenerator builds rotation · shift · shear · zoom about the centre
    (with the height's centre in the x slot, as it does). This is that product
    written out in closed form, a few dozen float operations where six 3x3
    products would cost a third of the resampling.
    """
    theta, shear = math.radians(transform.theta), math.radians(transform.shear)
    cos, sin, shear_sin, shear_cos = math.cos(theta), math.sin(theta), math.sin(shear), math.cos(shear)
    a, b = cos * transform.zx, -(cos * shear_sin + sin * shear_cos) * transform.zy
    c, d = sin * transform.zx, (cos * shear_cos - sin * shear_sin) * transform.zy
    centre_x, centre_y = height / 2 - 0.5, width / 2 - 0.5
    offset_x = centre_x + cos * transform.tx - sin * transform.ty - a * centre_x - b * centre_y
    offset_y = centre_y + sin * transform.tx + cos * transform.ty - c * centre_x - d * centre_y
    affine = np.array([[a, b, offset_x], [c, d, offset_y], [0.0, 0.0, 1.0]])
    return affine @ flip_matrix(transform.flip_horizontal, transform.flip_vertical, height, width)


def flip_matrix(horizontal: bool, vertical: bool, height: int, width: int) -> np.ndarray:
    """Output-to-input map of a left-right and/or top-bottom flip."""
    x_scale, x_shift = (-1.0, width - 1) if horizontal else (1.0, 0)
    y_scale, y_shift = (-1.0, height - 1) if vertical else (1.0, 0)
    return np.array([[x_scale, 0, x_shift], [0, y_scale, y_shift], [0, 0, 1]])


def random_transform(rng: np.random.Generator, policy: SeedPolicy, height: int, width: int) -> Transform:
    """ImageDataGenerator's draws (same ranges and distributions), taken from `rng` in one call."""
    u = rng.random(9).tolist()
    brightness = policy.brightness_range
    return Transform(
        theta=(2 * u[0] - 1) * policy.rotation_range,
        tx=(2 * u[1] - 1) * policy.height_shift_range * height,
        ty=(2 * u[2] - 1) * policy.width_shift_range * width,
        shear=(2 * u[3] - 1) * policy.shear_range,
        zx=1 + (2 * u[4] - 1) * policy.zoom_range,
        zy=1 + (2 * u[5] - 1) * policy.zoom_range,
        flip_horizontal=policy.horizontal_flip and u[6] < 0.5,
        flip_vertical=policy.vertical_flip and u[7] < 0.5,
        brightness=brightness[0] + (brightness[1] - brightness[0]) * u[8] if brightness else None,
    )


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


def draw_flip(op: RandomFlip, rng, height, width):
    horizontal = op.mode != "vertical" and rng.uniform() < 0.5
    vertical = op.mode != "horizontal" and rng.uniform() < 0.5
    return flip_matrix(horizontal, vertical, height, width)


def draw_rotation(op: RandomRotation, rng, height, width):
    angle = symmetric(rng, op.factor) * 2 * np.pi
    cos, sin = np.cos(angle), np.sin(angle)
    return about_centre(np.array([[cos, -sin, 0], [sin, cos, 0], [0, 0, 1]]), height, width)


def draw_zoom(op: RandomZoom, rng, height, width):
    zoom_y = 1 + symmetric(rng, op.height_factor)
    zoom_x = zoom_y if op.width_factor is None else 1 + symmetric(rng, op.width_factor)
    return about_centre(np.diag([zoom_x, zoom_y, 1.0]), height, width)


def draw_translation(op: RandomTranslation, rng, height, width):
    dy, dx = symmetric(rng, op.height_factor) * height, symmetric(rng, op.width_factor) * width
    return np.array([[1, 0, -dx], [0, 1, -dy], [0, 0, 1.0]])


def draw_shear(op: RandomShear, rng, height, width):
    sx, sy = symmetric(rng, op.x_factor), symmetric(rng, op.y_factor)
    return about_centre(np.array([[1, sx, 0], [sy, 1, 0], [0, 0, 1.0]]), height, width)


def draw_perspective(op: RandomPerspective, rng, height, width):
    if rng.uniform() >= op.factor:
        return None
    corners = np.array([[0, 0], [width - 1, 0], [width - 1, height - 1], [0, height - 1]], dtype=np.float32)
    moved = corners + rng.uniform(-op.scale, op.scale, size=(4, 2)) * np.array([width, height]) / 2
    return cv2.getPerspectiveTransform(corners, moved.astype(np.float32)).astype(np.float64)


def draw_brightness(op: RandomBrightness, rng, height, width):
    delta = symmetric(rng, op.factor) * 255
    return lambda pixels: lookup(pixels, np.arange(256) + delta)


def draw_contrast(op: RandomContrast, rng, height, width):
    scale = 1 + symmetric(rng, op.factor)

    def contrast(pixels):
        mean = np.array(cv2.mean(pixels)[: 1 if pixels.ndim == 2 else 3])
        return lookup(pixels, (np.arange(256)[:, None] - mean) * scale + mean)

    return contrast


def draw_saturation(op: RandomSaturation, rng, height, width):
    scale = 1 + symmetric(rng, op.factor)

    def saturation(pixels):  # a blend with the image's own grey version (luma 0.299 R + 0.587 G + 0.114 B)
        if pixels.ndim == 2:
            return pixels
        grey = cv2.cvtColor(cv2.cvtColor(pixels, cv2.COLOR_RGB2GRAY), cv2.COLOR_GRAY2RGB)
        return cv2.addWeighted(pixels, scale, grey, 1 - scale, 0)

    return saturation


def draw_hue(op: RandomHue, rng, height, width):
    turn = symmetric(rng, op.factor) * 180  # degrees

    def hue(pixels):
        if pixels.ndim == 2:
            return pixels
        hsv = cv2.cvtColor(pixels.astype(np.float32) / 255, cv2.COLOR_RGB2HSV)
        hsv[..., 0] = (hsv[..., 0] + turn) % 360
        return to_uint8(cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB) * 255)

    return hue


def draw_gaussian_blur(op: RandomGaussianBlur, rng, height, width):
    if rng.uniform() >= op.factor:
        return None
    sigma = op.sigma * (1 - rng.uniform())  # in (0, sigma]
    return lambda pixels: cv2.GaussianBlur(pixels, (op.kernel_size, op.kernel_size), sigma, sigmaY=sigma)


def draw_erasing(op: RandomErasing, rng, height, width):
    if rng.uniform() >= op.factor:
        return None
    area = rng.uniform(*op.scale) * height * width
    aspect = np.exp(rng.uniform(np.log(0.3), np.log(1 / 0.3)))
    tall = min(height, max(1, round(np.sqrt(area * aspect))))
    wide = min(width, max(1, round(np.sqrt(area / aspect))))
    top, left = rng.integers(0, height - tall + 1), rng.integers(0, width - wide + 1)
    noise_seed = rng.integers(2**32)

    def erase(pixels):
        out = pixels.copy()
        patch = out[top : top + tall, left : left + wide]
        fill = np.random.default_rng(noise_seed).integers(0, 256, size=patch.shape, dtype=np.uint8)
        patch[...] = fill if op.fill_value is None else op.fill_value
        return out

    return erase


DRAWS = {
    "RandomFlip": draw_flip,
    "RandomRotation": draw_rotation,
    "RandomZoom": draw_zoom,
    "RandomTranslation": draw_translation,
    "RandomShear": draw_shear,
    "RandomPerspective": draw_perspective,
    "RandomBrightness": draw_brightness,
    "RandomContrast": draw_contrast,
    "RandomSaturation": draw_saturation,
    "RandomHue": draw_hue,
    "RandomGaussianBlur": draw_gaussian_blur,
    "RandomErasing": draw_erasing,
}


@functools.cache
def randaugment_menu(magnitude: float) -> tuple:
    """RandAugment's operations at a magnitude in [0, 1]; each draws up to magnitude x its maximum."""
    return (
        RandomRotation(name="RandomRotation", factor=magnitude * 30 / 360),
        RandomShear(name="RandomShear", x_factor=magnitude * 0.3, y_factor=0.0),
        RandomShear(name="RandomShear", x_factor=0.0, y_factor=magnitude * 0.3),
        RandomTranslation(name="RandomTranslation", height_factor=0.0, width_factor=magnitude * 0.3),
        RandomTranslation(name="RandomTranslation", height_factor=magnitude * 0.3, width_factor=0.0),
        RandomBrightness(name="RandomBrightness", factor=magnitude * 0.3),
        RandomContrast(name="RandomContrast", factor=magnitude * 0.9),
        RandomSaturation(name="RandomSaturation", factor=magnitude * 0.9),
        RandomHue(name="RandomHue", factor=magnitude * 0.1),
    )


def policy_transforms(policy: Policy, rng: np.random.Generator) -> list:
    """The Keras-style transforms a (non-seed) policy applies to one copy, in order."""
    if isinstance(policy, FlipPolicy):
        mode = {(True, False): "horizontal", (False, True): "vertical", (True, True): "horizontal_and_vertical"}
        chosen = mode.get((policy.horizontal, policy.vertical))
        return [RandomFlip(name="RandomFlip", mode=chosen)] if chosen else []
    if isinstance(policy, GeometricPolicy):
        flip = [RandomFlip(name="RandomFlip", mode="horizontal")] if policy.horizontal_flip else []
        return [
            RandomRotation(name="RandomRotation", factor=policy.rotation),
            RandomZoom(name="RandomZoom", height_factor=policy.zoom),
            RandomTranslation(
                name="RandomTranslation", height_factor=policy.translation, width_factor=policy.translation
            ),
            RandomShear(name="RandomShear", x_factor=policy.shear, y_factor=policy.shear),
            *flip,
        ]
    if isinstance(policy, ColorPolicy):
        return [
            RandomBrightness(name="RandomBrightness", factor=policy.brightness),
            RandomContrast(name="RandomContrast", factor=policy.contrast),
            RandomSaturation(name="RandomSaturation", factor=policy.saturation),
            RandomHue(name="RandomHue", factor=policy.hue),
        ]
    if isinstance(policy, RandAugmentPolicy):
        menu = randaugment_menu(policy.magnitude)
        return [menu[index] for index in rng.integers(0, len(menu), size=policy.num_ops)]
    assert isinstance(policy, CustomPolicy)
    return list(policy.transforms)


def draw(policy: Policy, rng: np.random.Generator, height: int, width: int) -> tuple[np.ndarray, list[PixelOp]]:
    """One copy's fused output-to-input (x, y) matrix and its pixel operations, drawn from `rng`."""
    if isinstance(policy, SeedPolicy):
        transform = random_transform(rng, policy, height, width)
        factor = transform.brightness
        brightness = [] if factor is None else [lambda pixels: lookup(pixels, np.arange(256) * factor)]
        return transform_matrix(transform, height, width), brightness
    matrix, pixel_ops = np.eye(3), []
    for transform in policy_transforms(policy, rng):
        step = DRAWS[transform.name](transform, rng, height, width)
        if isinstance(step, np.ndarray):
            matrix = matrix @ step
        elif step is not None:
            pixel_ops.append(step)
    return matrix, pixel_ops


def fill_mode(policy: Policy) -> str:
    """How pixels that map outside the input are filled; flip and colour policies never map outside."""
    return getattr(policy, "fill_mode", "nearest")
