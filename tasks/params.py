"""params.yaml, checked against a schema before any stage does work.

Every stage and the Prefect flow call `load_params()` first, so a typo or an
out-of-range value stops the run with one sentence naming the key, never
half-way through an hour of training.
"""

from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, model_validator

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
    image_size: tuple[Positive, Positive] = (64, 64)
    max_pixels: Positive = 89_478_485
    max_archive_bytes: Positive = 2_000_000_000
    max_archive_members: Positive = 100_000
    min_per_class: Positive = 10
    split: SplitFractions = SplitFractions()
    near_dup_distance: Annotated[int, Field(ge=0, le=64)] = 4


class AugmentParams(Strict):
    copies: Annotated[int, Field(ge=0)] = 20
    rotation_range: Annotated[float, Field(ge=0.0, le=180.0)] = 40.0
    width_shift_range: Fraction = 0.2
    height_shift_range: Fraction = 0.2
    shear_range: Annotated[float, Field(ge=0.0, le=90.0)] = 0.2
    zoom_range: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.2
    horizontal_flip: bool = True
    fill_mode: Literal["nearest", "constant", "reflect", "wrap"] = "nearest"
    seed: int = 0
    preview_images: Positive = 6
    preview_copies: Positive = 6


class TrainParams(Strict):
    arms: Annotated[list[Literal["original", "augmented", "online"]], AfterValidator(_no_repeats)] = Field(
        default=["original", "augmented"], min_length=2
    )
    seeds: Annotated[list[int], AfterValidator(_no_repeats)] = Field(default=[0, 1, 2], min_length=1)
    epochs: Positive = 10
    batch_size: Positive = 32
    learning_rate: Annotated[float, Field(gt=0.0, lt=1.0)] = 0.001
    conv_filters: list[Positive] = Field(default=[32, 64], min_length=1)
    kernel_size: Positive = 3

class EvaluateParams(Strict):
    confidence: Annotated[float, Field(gt=0.5, lt=1.0)] = 0.95
    batch_size: Positive = 256


class Params(Strict):
    ingest: IngestParams = IngestParams()
    augment: AugmentParams = AugmentParams()
    train: TrainParams = TrainParams()
    evaluate: EvaluateParams = EvaluateParams()


MOVED = {"ingest.fashion_mnist_dir": "ingest.source"}  # an old key -> the key that now holds its value


def _describe(error: dict) -> str:
    key = ".".join(str(part) for part in error["loc"])
    if error["type"] == "extra_forbidden" and key in MOVED:
        return f"{key} is now {MOVED[key]}: move its value there"
    if error["type"] == "extra_forbidden":
        return f"{key} is not a known setting; remove it or check its spelling"
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
        raise UserError(f"{path} must be a mapping of stage names (ingest, augment, train, evaluate) to settings.")
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
