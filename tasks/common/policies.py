"""The augmentation policies `augment.policy` can name: each one's settings (checked in params.yaml) and what it draws
for one copy, side by side.

A policy's `draw` gives one copy's output-to-input (x, y) matrix, every geometric transform fused into it so the
image is resampled once, and the pixel operations that follow, in order. The `seed` policy draws what
ImageDataGenerator draws and builds its matrix the way it does; the others are made of the Keras-style transforms of
tasks/common/transforms.py. A new policy is a class here and its name in POLICIES (docs/extending.md).
"""

import functools
import math
from dataclasses import dataclass
from typing import Annotated, Literal

import numpy as np
from pydantic import AfterValidator, Field, TypeAdapter

from tasks.common.schema import FillMode, Fraction, Strict, one_of, ordered, variant
from tasks.common.transforms import (
    CustomTransform,
    PixelOp,
    RandomBrightness,
    RandomContrast,
    RandomFlip,
    RandomHue,
    RandomRotation,
    RandomSaturation,
    RandomShear,
    RandomTranslation,
    RandomZoom,
    compose,
    flip_matrix,
    lookup,
)

Degrees = Annotated[float, Field(ge=0.0, le=180.0)]
Draw = tuple[np.ndarray, list[PixelOp]]  # a copy's fused matrix and its pixel operations


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


class SeedPolicy(Strict):
    """The classic demonstration's ImageDataGenerator set, in its own names and units."""

    name: Literal["seed"] = Field("seed", description="A policy without a name is this one.")
    rotation_range: Degrees = Field(40.0, description="Degrees: the rotation is drawn in [-r, r].")
    width_shift_range: Fraction = Field(0.2, description="Fraction of the width.")
    height_shift_range: Fraction = Field(0.2, description="Fraction of the height.")
    shear_range: Annotated[float, Field(ge=0.0, le=90.0)] = Field(0.2, description="Degrees, as in ImageDataGenerator.")
    zoom_range: Annotated[float, Field(ge=0.0, lt=1.0)] = Field(
        0.2, description="Each axis zoomed by a factor drawn in [1 - z, 1 + z]."
    )
    horizontal_flip: bool = Field(True, description="Flip left-right with probability 1/2.")
    vertical_flip: bool = Field(False, description="Flip top-bottom with probability 1/2.")
    fill_mode: FillMode = Field(
        "nearest", description="How pixels that map outside the image are filled (docs/augmentation.md)."
    )
    brightness_range: Annotated[
        tuple[Annotated[float, Field(ge=0.0)], Annotated[float, Field(ge=0.0)]] | None, AfterValidator(ordered)
    ] = Field(None, description="[low, high]: brightness multiplied by a factor drawn in it; null: unchanged.")

    def draw(self, rng: np.random.Generator, height: int, width: int) -> Draw:
        transform = random_transform(rng, self, height, width)
        factor = transform.brightness
        brightness = [] if factor is None else [lambda pixels: lookup(pixels, np.arange(256) * factor)]
        return transform_matrix(transform, height, width), brightness


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


class FlipPolicy(Strict):
    """Flips only, each allowed one with probability 1/2."""

    name: Literal["flip"]
    horizontal: bool = Field(True, description="Allow a left-right flip.")
    vertical: bool = Field(False, description="Allow a top-bottom flip.")

    def draw(self, rng: np.random.Generator, height: int, width: int) -> Draw:
        mode = {(True, False): "horizontal", (False, True): "vertical", (True, True): "horizontal_and_vertical"}
        chosen = mode.get((self.horizontal, self.vertical))
        return compose([RandomFlip(name="RandomFlip", mode=chosen)] if chosen else [], rng, height, width)


class GeometricPolicy(Strict):
    """Rotation, zoom, translation, shear and a horizontal flip, Keras-style factors, one resampling."""

    name: Literal["geometric"]
    rotation: Annotated[float, Field(ge=0.0, le=0.5)] = Field(
        0.1, description="Fraction of a full turn, as RandomRotation's factor."
    )
    zoom: Annotated[float, Field(ge=0.0, lt=1.0)] = Field(
        0.1, description="As RandomZoom's height_factor (both axes alike)."
    )
    translation: Fraction = Field(
        0.1, description="Fraction of the height and of the width, as RandomTranslation's factors."
    )
    shear: Fraction = Field(0.1, description="Shear coefficient along x and along y, as RandomShear's factors.")
    horizontal_flip: bool = Field(True, description="Flip left-right with probability 1/2.")
    fill_mode: FillMode = Field("reflect", description="How pixels that map outside the image are filled.")

    def draw(self, rng: np.random.Generator, height: int, width: int) -> Draw:
        flip = [RandomFlip(name="RandomFlip", mode="horizontal")] if self.horizontal_flip else []
        transforms = [
            RandomRotation(name="RandomRotation", factor=self.rotation),
            RandomZoom(name="RandomZoom", height_factor=self.zoom),
            RandomTranslation(name="RandomTranslation", height_factor=self.translation, width_factor=self.translation),
            RandomShear(name="RandomShear", x_factor=self.shear, y_factor=self.shear),
            *flip,
        ]
        return compose(transforms, rng, height, width)


class ColorPolicy(Strict):
    """Brightness, contrast, saturation and hue in turn, each as the custom transform of that name."""

    name: Literal["color"]
    brightness: Fraction = Field(0.2, description="RandomBrightness's factor.")
    contrast: Fraction = Field(0.2, description="RandomContrast's factor.")
    saturation: Fraction = Field(0.2, description="RandomSaturation's factor.")
    hue: Fraction = Field(0.05, description="RandomHue's factor.")

    def draw(self, rng: np.random.Generator, height: int, width: int) -> Draw:
        transforms = [
            RandomBrightness(name="RandomBrightness", factor=self.brightness),
            RandomContrast(name="RandomContrast", factor=self.contrast),
            RandomSaturation(name="RandomSaturation", factor=self.saturation),
            RandomHue(name="RandomHue", factor=self.hue),
        ]
        return compose(transforms, rng, height, width)


class RandAugmentPolicy(Strict):
    """RandAugment: num_ops transforms picked at random per copy, each up to magnitude x its maximum."""

    name: Literal["randaugment"]
    num_ops: Annotated[int, Field(ge=1, le=10)] = Field(2, description="Operations drawn per copy.")
    magnitude: Fraction = Field(0.5, description="Each operation draws up to magnitude x its maximum strength.")
    fill_mode: FillMode = Field("reflect", description="How pixels that map outside the image are filled.")

    def operations(self, rng: np.random.Generator) -> list:
        """The num_ops transforms one copy applies, drawn from the menu with replacement."""
        menu = randaugment_menu(self.magnitude)
        return [menu[index] for index in rng.integers(0, len(menu), size=self.num_ops)]

    def draw(self, rng: np.random.Generator, height: int, width: int) -> Draw:
        return compose(self.operations(rng), rng, height, width)


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


class CustomPolicy(Strict):
    """Your own list; geometric transforms are fused into one resampling, the others follow in order."""

    name: Literal["custom"]
    transforms: list[CustomTransform] = Field(
        min_length=1, description="The transforms, each a mapping with its name (below)."
    )
    fill_mode: FillMode = Field("reflect", description="How pixels that map outside the image are filled.")

    def draw(self, rng: np.random.Generator, height: int, width: int) -> Draw:
        return compose(self.transforms, rng, height, width)


POLICIES = (SeedPolicy, FlipPolicy, GeometricPolicy, ColorPolicy, RandAugmentPolicy, CustomPolicy)
Policy = one_of(*POLICIES)
# The policies that can be named alone, every setting with a default (custom needs its list of transforms).
PolicyName = Literal[
    tuple(
        variant(policy)
        for policy in POLICIES
        if not any(field.is_required() for key, field in policy.model_fields.items() if key != "name")
    )
]


def policy_from_name(name: str) -> Strict:
    """The policy of that name with its defaults, as `augment.policy: <name>` reads."""
    return TypeAdapter(Policy).validate_python(name)


def fill_mode(policy: Strict) -> str:
    """How pixels that map outside the input are filled; flip and colour policies never map outside."""
    return getattr(policy, "fill_mode", "nearest")
