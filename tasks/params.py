"""params.yaml, checked against a schema before any stage does work.

Every stage and the Prefect flow call `load_params()` first, so a typo or an
out-of-range value stops the run with one sentence naming the key, never
half-way through an hour of training.
"""

from difflib import get_close_matches
from pathlib import Path
from typing import Annotated, Literal, get_args

import yaml
from pydantic import (
    AfterValidator, BaseModel, BeforeValidator, ConfigDict, Discriminator, Field, Tag, TypeAdapter, ValidationError,
    model_validator,
)  # fmt: skip

from tasks.errors import UserError

PARAMS_FILE = Path("params.yaml")
FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"
FASHION_MNIST_CLASSES = (
    "tshirt_top", "trouser", "pullover", "dress", "coat",
    "sandal", "shirt", "sneaker", "bag", "ankle_boot",
)  # fmt: skip


def _no_repeats(values: list) -> list:
    if len(set(values)) != len(values):
        raise ValueError("list each value only once")
    return values


Positive = Annotated[int, Field(ge=1)]
Fraction = Annotated[float, Field(ge=0.0, le=1.0)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SplitFractions(Strict):
    """Shares of a class-folder source drawn into val and test; the rest is train."""

    val: Fraction = 0.15
    test: Fraction = 0.15

    @model_validator(mode="after")
    def _leaves_a_training_share(self) -> "SplitFractions":
        if self.val + self.test >= 1:
            raise ValueError("val + test must be below 1, to leave images for train")
        return self


class IngestParams(Strict):
    # One path, always real, so that dvc.yaml can name it as the stage's dependency:
    # Fashion-MNIST's folder (recognised by its IDX files), an image folder or an archive.
    source: str = Field(default=FASHION_MNIST_DIR, min_length=1)
    # Fashion-MNIST only.
    classes: Annotated[list[Literal[FASHION_MNIST_CLASSES]], AfterValidator(_no_repeats)] = Field(
        default=["pullover", "coat"], min_length=2
    )
    train_per_class: Positive = 250
    val_per_class: Positive = 250
    test_per_class: Positive | None = None
    seed: int = 0
    # Image folders and archives only.
    color_mode: Literal["rgb", "grayscale"] | None = None
    # null: the images' own size when they share one (the most common size when they differ), scaled down to fit
    # OWN_SIZE_CAP on its longer side; [height, width]: cropped to that aspect ratio, then resized.
    image_size: tuple[Positive, Positive] | None = None
    max_pixels: Positive = 89_478_485
    max_archive_bytes: Positive = 2_000_000_000
    max_archive_members: Positive = 100_000
    min_per_class: Positive = 10
    split: SplitFractions = SplitFractions()
    near_dup_distance: Annotated[int, Field(ge=0, le=64)] = 4


FillMode = Literal["nearest", "constant", "reflect", "wrap"]
Degrees = Annotated[float, Field(ge=0.0, le=180.0)]


def _odd(value: int) -> int:
    if value % 2 == 0:
        raise ValueError("use an odd kernel size")
    return value


def _ordered(pair: tuple[float, float] | None) -> tuple[float, float] | None:
    if pair is not None and pair[0] > pair[1]:
        raise ValueError("give [low, high] with low <= high")
    return pair


Odd = Annotated[int, Field(ge=3, le=31), AfterValidator(_odd)]


# Transforms of the `custom` policy, named and parametrised like Keras 3's augmentation layers.
# Factors are fractions: the strength of each draw is uniform in [-factor, +factor].


class RandomFlip(Strict):
    name: Literal["RandomFlip"]
    mode: Literal["horizontal", "vertical", "horizontal_and_vertical"] = "horizontal"


class RandomRotation(Strict):
    name: Literal["RandomRotation"]
    factor: Annotated[float, Field(ge=0.0, le=0.5)] = 0.1  # fraction of a full turn


class RandomZoom(Strict):
    name: Literal["RandomZoom"]
    height_factor: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.1  # positive zooms out, negative in
    width_factor: Annotated[float, Field(ge=0.0, lt=1.0)] | None = None  # None: the height's draw


class RandomTranslation(Strict):
    name: Literal["RandomTranslation"]
    height_factor: Fraction = 0.1  # fraction of the height
    width_factor: Fraction = 0.1


class RandomShear(Strict):
    name: Literal["RandomShear"]
    x_factor: Fraction = 0.1  # shear coefficient (tan of the angle)
    y_factor: Fraction = 0.0


class RandomPerspective(Strict):
    name: Literal["RandomPerspective"]
    factor: Fraction = 1.0  # probability of applying it
    scale: Fraction = 0.2  # each corner moves by up to scale x half the image size


class RandomBrightness(Strict):
    name: Literal["RandomBrightness"]
    factor: Fraction = 0.2  # adds up to factor x 255


class RandomContrast(Strict):
    name: Literal["RandomContrast"]
    factor: Fraction = 0.2  # distance to each channel's mean scaled by [1 - factor, 1 + factor]


class RandomSaturation(Strict):
    name: Literal["RandomSaturation"]
    factor: Fraction = 0.2  # saturation scaled by [1 - factor, 1 + factor]; grey images unchanged


class RandomHue(Strict):
    name: Literal["RandomHue"]
    factor: Fraction = 0.1  # hue turned by up to factor x 180 degrees; grey images unchanged


class RandomGaussianBlur(Strict):
    name: Literal["RandomGaussianBlur"]
    factor: Fraction = 1.0  # probability of applying it
    kernel_size: Odd = 3
    sigma: Annotated[float, Field(gt=0.0, le=10.0)] = 1.0  # sigma drawn in (0, sigma]


class RandomErasing(Strict):
    name: Literal["RandomErasing"]
    factor: Fraction = 1.0  # probability of applying it
    scale: Annotated[tuple[Fraction, Fraction], AfterValidator(_ordered)] = (0.02, 0.33)  # erased area fraction
    fill_value: Annotated[int, Field(ge=0, le=255)] | None = None  # None: random noise


CustomTransform = Annotated[
    RandomFlip | RandomRotation | RandomZoom | RandomTranslation | RandomShear | RandomPerspective
    | RandomBrightness | RandomContrast | RandomSaturation | RandomHue | RandomGaussianBlur | RandomErasing,
    Field(discriminator="name"),
]


class SeedPolicy(Strict):
    """The classic demonstration's ImageDataGenerator set, in its own names and units."""

    name: Literal["seed"] = "seed"
    rotation_range: Degrees = 40.0
    width_shift_range: Fraction = 0.2  # fraction of the width
    height_shift_range: Fraction = 0.2  # fraction of the height
    shear_range: Annotated[float, Field(ge=0.0, le=90.0)] = 0.2  # degrees
    zoom_range: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.2  # each axis zoomed by [1 - z, 1 + z]
    horizontal_flip: bool = True
    vertical_flip: bool = False
    fill_mode: FillMode = "nearest"
    brightness_range: Annotated[
        tuple[Annotated[float, Field(ge=0.0)], Annotated[float, Field(ge=0.0)]] | None, AfterValidator(_ordered)
    ] = None  # brightness multiplied by a factor in [low, high]


class FlipPolicy(Strict):
    name: Literal["flip"]
    horizontal: bool = True
    vertical: bool = False


class GeometricPolicy(Strict):
    """Rotation, zoom, translation, shear and a horizontal flip, Keras-style factors, one resampling."""

    name: Literal["geometric"]
    rotation: Annotated[float, Field(ge=0.0, le=0.5)] = 0.1  # fraction of a full turn
    zoom: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.1
    translation: Fraction = 0.1
    shear: Fraction = 0.1
    horizontal_flip: bool = True
    fill_mode: FillMode = "reflect"


class ColorPolicy(Strict):
    name: Literal["color"]
    brightness: Fraction = 0.2
    contrast: Fraction = 0.2
    saturation: Fraction = 0.2
    hue: Fraction = 0.05


class RandAugmentPolicy(Strict):
    """RandAugment: num_ops transforms picked at random per copy, each up to magnitude x its maximum."""

    name: Literal["randaugment"]
    num_ops: Annotated[int, Field(ge=1, le=10)] = 2
    magnitude: Fraction = 0.5
    fill_mode: FillMode = "reflect"


class CustomPolicy(Strict):
    """Your own list; geometric transforms are fused into one resampling, the others follow in order."""

    name: Literal["custom"]
    transforms: list[CustomTransform] = Field(min_length=1)
    fill_mode: FillMode = "reflect"


def _policy_name(value: dict | BaseModel) -> str:
    """A policy without a name is the seed policy, so ImageDataGenerator settings carry over as they are."""
    return value.get("name", "seed") if isinstance(value, dict) else value.name


def _named(value):
    """A bare name stands for that policy with its defaults (`dvc exp run -S augment.policy=randaugment`)."""
    return {"name": value} if isinstance(value, str) else value


Policy = Annotated[
    Annotated[SeedPolicy, Tag("seed")] | Annotated[FlipPolicy, Tag("flip")]
    | Annotated[GeometricPolicy, Tag("geometric")] | Annotated[ColorPolicy, Tag("color")]
    | Annotated[RandAugmentPolicy, Tag("randaugment")] | Annotated[CustomPolicy, Tag("custom")],
    Discriminator(_policy_name),
    BeforeValidator(_named),
]  # fmt: skip
# Policies that can be named alone: custom needs its list of transforms.
PolicyName = Literal["seed", "flip", "geometric", "color", "randaugment"]


def policy_from_name(name: str) -> SeedPolicy | FlipPolicy | GeometricPolicy | ColorPolicy | RandAugmentPolicy:
    """The policy of that name with its defaults, as `augment.policy: <name>` reads."""
    return TypeAdapter(Policy).validate_python(name)


class AugmentParams(Strict):
    copies: Annotated[int, Field(ge=0, le=999)] = 20
    seed: Annotated[int, Field(ge=0, lt=2**32)] = 0
    policy: Policy = SeedPolicy()
    format: Literal["png", "jpeg"] = "png"
    png_compress_level: Annotated[int, Field(ge=0, le=9)] = 1  # 1: 2-3x faster than 6 (Pillow's default), files ~20% larger
    jpeg_quality: Annotated[int, Field(ge=1, le=100)] = 95
    preview_images: Positive = 6
    preview_copies: Positive = 6


class TrainParams(Strict):
    arms: Annotated[list[Literal["original", "augmented", "repeated", "online"]], AfterValidator(_no_repeats)] = Field(
        default=["original", "augmented", "repeated"], min_length=2
    )
    seeds: Annotated[list[Annotated[int, Field(ge=0)]], AfterValidator(_no_repeats)] = Field(default=[0, 1, 2], min_length=1)
    epochs: Positive = 10
    # last: the final epoch's weights (the classic demonstration's way); best_val: each run's best validation epoch's.
    checkpoint: Literal["last", "best_val"] = "last"
    batch_size: Positive = 32
    learning_rate: Annotated[float, Field(gt=0.0, lt=1.0)] = 0.001
    conv_filters: list[Positive] = Field(default=[32, 64], min_length=1)
    kernel_size: Positive = 3


class EvaluateParams(Strict):
    confidence: Annotated[float, Field(gt=0.5, lt=1.0)] = 0.95
    # Points of test accuracy: a difference whose equivalence interval lies inside ±margin is "equivalent".
    equivalence_margin: Annotated[float, Field(gt=0.0, le=100.0)] = 1.0
    batch_size: Positive = 256
    # Each listed policy, with its defaults, becomes an arm of its own, compared with original.
    compare_policies: Annotated[list[PolicyName], AfterValidator(_no_repeats)] = []


class StudyParams(Strict):
    sizes: Annotated[list[Positive], AfterValidator(_no_repeats)] = Field(default=[25, 50, 100, 250, 1000, 5750], min_length=1)


class Params(Strict):
    ingest: IngestParams = IngestParams()
    augment: AugmentParams = AugmentParams()
    train: TrainParams = TrainParams()
    evaluate: EvaluateParams = EvaluateParams()
    study: StudyParams = StudyParams()

    @property
    def arms(self) -> list[str]:
        """Every trained arm: train.arms, then one per compared policy (named after it)."""
        return self.train.arms + self.evaluate.compare_policies


def baseline_arm(arms: list[str]) -> str:
    """The arm the others are compared with: original when it is trained, else the first arm of train.arms."""
    return "original" if "original" in arms else arms[0]


MOVED = {"ingest.fashion_mnist_dir": "ingest.source"}  # an old key -> the key that now holds its value


def _models(annotation) -> list[type[BaseModel]]:
    """The models a field can hold: the field's own, or those inside its union, list or Annotated."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [model for argument in get_args(annotation) for model in _models(argument)]


def _settings_beside(loc: tuple) -> list[str]:
    """The settings the schema knows at an error's level, following its location down from Params.

    A location also holds list indices, and union tags (a policy's or transform's name), which pick
    the union's member of that name."""
    models = [Params]
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        holders = [model for model in models if part in model.model_fields]
        if holders:
            models = [inner for model in holders for inner in _models(model.model_fields[part].annotation)]
        else:
            models = [model for model in models if "name" in model.model_fields and get_args(model.model_fields["name"].annotation) == (part,)]
    return sorted({name for model in models for name in model.model_fields})


def _describe(error: dict) -> str:
    key = ".".join(str(part) for part in error["loc"])
    if error["type"] == "extra_forbidden" and key in MOVED:
        return f"{key} is now {MOVED[key]}: move its value there"
    if error["type"] == "extra_forbidden":
        *parents, unknown = (str(part) for part in error["loc"])
        likely = get_close_matches(unknown, _settings_beside(error["loc"]), n=1)
        if likely:
            return f"{key} is not a known setting: did you mean {'.'.join([*parents, likely[0]])}? Remove it or fix its spelling"
        return f"{key} is not a known setting; remove it or check its spelling"
    if error["type"] == "union_tag_invalid":
        return f"{key}: unknown name {error['ctx']['tag']!r}; use one of {error['ctx']['expected_tags']}"
    return f"{key}: {error['msg']} (got {error.get('input')!r})"


def load_params(path: Path = PARAMS_FILE) -> Params:
    """Read and validate params.yaml; raise UserError naming the first bad key."""
    try:
        raw = yaml.safe_load(Path(path).read_text()) or {}
    except FileNotFoundError:
        raise UserError(f"{path} not found: run augflow from the project root, where params.yaml lives.") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise UserError(f"{path} is not valid YAML{where}: fix its syntax.") from None
    if not isinstance(raw, dict):
        raise UserError(f"{path} must be a mapping of stage names (ingest, augment, train, evaluate, study) to settings.")
    try:
        return Params.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(_describe(error) for error in exc.errors())
        raise UserError(f"{path}: {problems}.") from None


if __name__ == "__main__":
    from tasks.errors import run_cli

    def check() -> None:
        load_params()
        print(f"{PARAMS_FILE} is valid.")

    run_cli(check)
