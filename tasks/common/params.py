"""params.yaml, checked against a schema before any stage does work.

Every stage and the Prefect flow call `load_params()` first, so a typo or an
out-of-range value stops the run with one sentence naming the key, never
half-way through an hour of training.
"""

from difflib import get_close_matches
from pathlib import Path
from typing import Annotated, Literal, get_args, get_origin

import yaml
from pydantic import AfterValidator, BaseModel, Field, ValidationError, model_validator

from tasks.common.arms import ARMS
from tasks.common.errors import UserError
from tasks.common.paths import PARAMS_FILE
from tasks.common.policies import Policy, PolicyName, SeedPolicy
from tasks.common.schema import Fraction, Positive, Strict, one_of, variant

FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"
FASHION_MNIST_CLASSES = (
    "tshirt_top",
    "trouser",
    "pullover",
    "dress",
    "coat",
    "sandal",
    "shirt",
    "sneaker",
    "bag",
    "ankle_boot",
)


def _no_repeats(values: list) -> list:
    """Each value at most once."""
    if len(set(values)) != len(values):
        raise ValueError("list each value only once")
    return values


class SplitFractions(Strict):
    """Shares of a class-folder source drawn into val and test; the rest is train."""

    val: Fraction = Field(0.15, description="Share of each class drawn into val.")
    test: Fraction = Field(0.15, description="Share of each class drawn into test; val + test must be below 1.")

    @model_validator(mode="after")
    def _leaves_a_training_share(self) -> "SplitFractions":
        if self.val + self.test >= 1:
            raise ValueError("val + test must be below 1, to leave images for train")
        return self


class IngestParams(Strict):
    """Where the images come from and how they are split into train, val and test."""

    # One path, always real, so that dvc.yaml can name it as the stage's dependency:
    # Fashion-MNIST's folder (recognised by its IDX files), an image folder or an archive.
    source: str = Field(
        default=FASHION_MNIST_DIR,
        min_length=1,
        description="A folder or an archive (.zip, .tar, .tar.gz, .tgz). A folder holding Fashion-MNIST's four IDX "
        "files is read as Fashion-MNIST; any other is read as class folders of images (docs/own-images.md).",
    )
    # Fashion-MNIST only.
    classes: Annotated[list[Literal[FASHION_MNIST_CLASSES]], AfterValidator(_no_repeats)] = Field(
        default=["pullover", "coat"],
        min_length=2,
        description="Fashion-MNIST only: the classes to classify (the classic demonstration used two).",
    )
    train_per_class: Positive = Field(
        250, description="Fashion-MNIST only: training images per class; each train seed draws its own."
    )
    val_per_class: Positive = Field(
        250,
        description="Fashion-MNIST only: validation images per class, drawn from the official training images train "
        "did not take.",
    )
    test_per_class: Positive | None = Field(
        None, description="Fashion-MNIST only: test images per class; null: every official test image of those classes."
    )
    seed: int = Field(
        0, description="Seed of the train/val/test draw (Fashion-MNIST's subsets, an image folder's val and test)."
    )
    # Image folders and archives only.
    color_mode: Literal["rgb", "grayscale"] | None = Field(
        None, description="Image folders and archives only: null: grayscale if every image is grey, else rgb."
    )
    image_size: tuple[Positive, Positive] | None = Field(
        None,
        description="Image folders and archives only: [height, width], each image cropped to that aspect ratio, then "
        "resized (Lanczos); null: the images' own size (the most common one when they differ), scaled to fit 160 px on "
        "its longer side.",
    )
    max_pixels: Positive = Field(
        89_478_485,
        description="Image folders and archives only: a larger image is refused from its header, never decoded "
        "(Pillow's own limit).",
    )
    max_archive_bytes: Positive = Field(
        2_000_000_000, description="An archive holding more bytes than this, uncompressed, is refused whole."
    )
    max_archive_members: Positive = Field(
        100_000, description="An archive with more members than this is refused whole."
    )
    min_per_class: Positive = Field(
        10, description="Image folders and archives only: a class with fewer usable images is left out and reported."
    )
    split: SplitFractions = Field(
        SplitFractions(),
        description="Image folders and archives without split folders: the shares drawn into val and test, by image "
        "content.",
    )
    near_dup_distance: Annotated[int, Field(ge=0, le=64)] = Field(
        4,
        description="dHash bits: images this close across splits join their earliest twin's split, so no near-copy "
        "leaks.",
    )
    seed_sample: Annotated[float, Field(gt=0.0, le=1.0)] = Field(
        0.5,
        description="Image folders and archives only: the share of each class's training images each train seed draws "
        "for itself, without replacement, by (ingest.seed, the seed, the image's content), so the interval covers "
        "which images a training set holds; 1: every seed trains on all of them (docs/own-images.md).",
    )


class AugmentParams(Strict):
    """The augmented copies of the training images."""

    copies: Annotated[int, Field(ge=0, le=999)] = Field(20, description="Copies per training image.")
    seed: Annotated[int, Field(ge=0, lt=2**32)] = Field(
        0, description="Copy j of an image depends on (seed, its pixel hash, j, policy) alone."
    )
    policy: Policy = Field(
        SeedPolicy(),
        description="The policy: a mapping with its name and settings (below); a mapping without a name is seed; "
        "a bare name (policy: randaugment) is that policy with its defaults.",
    )
    format: Literal["png", "jpeg"] = Field(
        "png",
        description="png (lossless) or jpeg: each copy with the losses of its own JPEG file at jpeg_quality "
        "(docs/augmentation.md); strips are PNG either way.",
    )
    png_compress_level: Annotated[int, Field(ge=0, le=9)] = Field(
        1, description="1 encodes 2-3x faster than 6 (Pillow's default), for files about 20% larger."
    )
    jpeg_quality: Annotated[int, Field(ge=1, le=100)] = Field(95, description="When format is jpeg.")
    preview_images: Positive = Field(6, description="Originals shown in reports/augment_preview.png.")
    preview_copies: Positive = Field(6, description="Copies shown beside each of them (at most copies).")


# Every model's optimizer settings, compiled by tasks/train/models.py's build.
Optimizer = Annotated[Literal["adam", "sgd", "rmsprop"], Field(description="Keras' optimizer of that name.")]
LearningRate = Annotated[float, Field(gt=0.0, lt=1.0, description="The optimizer's learning rate.")]


class CnnModel(Strict):
    """The classic demonstration's CNN: the pixels / 255, conv (relu) → 2x2 max-pool blocks, then dense layers and the
    output layer (one sigmoid unit for two classes, a softmax unit per class for more)."""

    name: Literal["cnn"] = Field("cnn", description="A model without a name is this one.")
    conv_filters: list[Positive] = Field(
        default=[32, 64], min_length=1, description="Filters of each convolution, one conv → pool block per entry."
    )
    kernel_size: Positive = Field(3, description="Side of every convolution kernel, in pixels.")
    dense_units: list[Positive] = Field(
        default=[], description="Units of each hidden dense layer (relu) before the output layer; []: none."
    )
    dropout: Annotated[float, Field(ge=0.0, lt=1.0)] = Field(
        0.0, description="Rate of a dropout layer just before the output layer; 0: none."
    )
    optimizer: Optimizer = "adam"
    learning_rate: LearningRate = 0.001


ModelParams = one_of(CnnModel)


class TrainParams(Strict):
    """The model trained once per arm and seed, and how it is trained."""

    arms: Annotated[list[Literal[tuple(ARMS)]], AfterValidator(_no_repeats)] = Field(
        default=["original", "augmented", "repeated"],
        min_length=2,
        description="Each arm trains the model on a training set of its own (tasks/common/arms.py, docs/pipeline.md). "
        + "; ".join(f"{arm.name}: {arm.about}" for arm in ARMS.values())
        + ".",
    )
    seeds: Annotated[list[Annotated[int, Field(ge=0)]], AfterValidator(_no_repeats)] = Field(
        default=[0, 1, 2], min_length=1, description="One model per arm and seed; arms are compared seed by seed."
    )
    epochs: Positive = Field(10, description="Epochs per training run.")
    checkpoint: Literal["last", "best_val"] = Field(
        "last",
        description="last: the final epoch's weights (the classic demonstration's way); best_val: each run's best "
        "validation epoch's.",
    )
    batch_size: Positive = Field(32, description="Training batch size.")
    model: ModelParams = Field(
        CnnModel(),
        description="The model and its optimizer: a mapping with its name and settings (below); a mapping without a "
        "name is cnn; a bare name (model: cnn) is that model with its defaults.",
    )


class EvaluateParams(Strict):
    """The test-set scores and the verdict (docs/verdict.md)."""

    confidence: Annotated[float, Field(gt=0.5, lt=1.0)] = Field(
        0.95, description="Confidence level of every interval and test."
    )
    equivalence_margin: Annotated[float, Field(gt=0.0, le=100.0)] = Field(
        1.0,
        description="Points of test accuracy: a difference whose equivalence interval lies inside ±margin is "
        '"equivalent".',
    )
    batch_size: Positive = Field(256, description="Batch size of the test-set predictions.")
    compare_policies: Annotated[list[PolicyName], AfterValidator(_no_repeats)] = Field(
        [],
        description="Each listed policy, with its defaults, becomes an arm of its own, compared with original; chosen "
        "among on val.",
    )


def _arms_or_policies(pairs: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Each name is an arm of train.arms or a policy of evaluate.compare_policies."""
    for name in (name for pair in pairs for name in pair):
        if name not in ARMS and name not in get_args(PolicyName):
            raise ValueError(
                f"{name!r} is not an arm: use one of {', '.join(ARMS)} or a policy of evaluate.compare_policies"
            )
    return pairs


class DecideParams(Strict):
    """`make decide` only: seeds added in rounds until every comparison listed is decided (tasks/decide/rounds.py)."""

    comparisons: Annotated[list[tuple[str, str]], AfterValidator(_arms_or_policies)] = Field(
        default=[("augmented", "repeated"), ("augmented", "original")],
        min_length=1,
        description="[treated, control] pairs of trained arms to decide; the error rate is shared among them "
        "(Bonferroni).",
    )
    first_seeds: Annotated[int, Field(ge=2)] = Field(
        3, description="Seeds at the first look (train.seeds first, then the smallest unused)."
    )
    round_seeds: Positive = Field(3, description="Seeds added by each round after the first.")
    max_seeds: Annotated[int, Field(ge=2, le=200)] = Field(
        15, description="Seeds at the last planned look; the design's error rates hold up to it."
    )
    max_hours: Annotated[float, Field(gt=0)] | None = Field(
        None,
        description="Stop before a round that would end after this many hours of decide's wall time; null: no time "
        "budget.",
    )
    spending: Literal["obrien-fleming", "pocock"] = Field(
        "obrien-fleming",
        description="The Lan-DeMets alpha-spending function: how the error rate is spread over the looks.",
    )

    @model_validator(mode="after")
    def _plan_fits(self) -> "DecideParams":
        if self.max_seeds < self.first_seeds:
            raise ValueError("max_seeds must be at least first_seeds")
        return self


class StudyParams(Strict):
    """The scaling study: `make study` only (study/dvc.yaml), never part of `make run`."""

    sizes: Annotated[list[Positive], AfterValidator(_no_repeats)] = Field(
        default=[25, 50, 100, 250, 1000, 5750],
        min_length=1,
        description="Training images per class, each run for every arm and seed; 5750 is all a Fashion-MNIST class has "
        "besides its 250 val images.",
    )


class Params(Strict):
    ingest: IngestParams = IngestParams()
    augment: AugmentParams = AugmentParams()
    train: TrainParams = TrainParams()
    evaluate: EvaluateParams = EvaluateParams()
    study: StudyParams = StudyParams()
    decide: DecideParams = DecideParams()

    @property
    def arms(self) -> list[str]:
        """Every trained arm: train.arms, then one per compared policy (named after it)."""
        return self.train.arms + self.evaluate.compare_policies


MOVED = {  # an old key -> the key that now holds its value
    "ingest.fashion_mnist_dir": "ingest.source",
    "train.conv_filters": "train.model.conv_filters",
    "train.kernel_size": "train.model.kernel_size",
    "train.learning_rate": "train.model.learning_rate",
}


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
            models = [
                model
                for model in models
                if "name" in model.model_fields and get_args(model.model_fields["name"].annotation) == (part,)
            ]
    return sorted({name for model in models for name in model.model_fields})


def _describe(error: dict) -> str:
    key = ".".join(str(part) for part in error["loc"])
    if error["type"] == "extra_forbidden" and key in MOVED:
        return f"{key} is now {MOVED[key]}: move its value there"
    if error["type"] == "extra_forbidden":
        *parents, unknown = (str(part) for part in error["loc"])
        likely = get_close_matches(unknown, _settings_beside(error["loc"]), n=1)
        if likely:
            return (
                f"{key} is not a known setting: did you mean {'.'.join([*parents, likely[0]])}? "
                "Remove it or fix its spelling"
            )
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
        raise UserError(
            f"{path} must be a mapping of stage names (ingest, augment, train, evaluate, study, decide) to settings."
        )
    try:
        return Params.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(_describe(error) for error in exc.errors())
        raise UserError(f"{path}: {problems}.") from None


# The reference page docs/params.md is generated from this schema:
# `python -m tasks.common.params --markdown > docs/params.md`.
DOC_COMMAND = "python -m tasks.common.params --markdown > docs/params.md"


def _number(value: float) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _bounds(schema: dict) -> str:
    low = (">", schema["exclusiveMinimum"]) if "exclusiveMinimum" in schema else ("≥", schema.get("minimum"))
    high = ("<", schema["exclusiveMaximum"]) if "exclusiveMaximum" in schema else ("≤", schema.get("maximum"))
    if low[0] == "≥" and high[0] == "≤" and None not in (low[1], high[1]):
        return f" {_number(low[1])} to {_number(high[1])}"
    return "".join(f" {sign} {_number(bound)}," for sign, bound in (low, high) if bound is not None).rstrip(",")


def _either(options: list[str]) -> str:
    return options[0] if len(options) == 1 else f"{', '.join(options[:-1])} or {options[-1]}"


def _kind(schema: dict) -> str:
    """A JSON schema of one setting, in words: its type and the values it allows."""
    if "anyOf" in schema:  # each allowed value or kind once: `rgb`, `grayscale` or `null`
        options = [
            [f"`{value}`" for value in option["enum"]] if "enum" in option else [_kind(option)]
            for option in schema["anyOf"]
        ]
        return _either([kind for option in options for kind in option])
    if "$ref" in schema or "oneOf" in schema:
        return "mapping, by its `name` (below)"
    if "const" in schema or "enum" in schema:
        return _either([f"`{value}`" for value in schema.get("enum", [schema.get("const")])])
    kind = schema.get("type")
    if kind == "array" and "prefixItems" in schema:
        return f"[{', '.join(_kind(item) for item in schema['prefixItems'])}]"
    if kind == "array":
        least = f" (at least {schema['minItems']})" if "minItems" in schema else ""
        return f"list{least} of {_kind(schema['items'])}"
    if kind in ("integer", "number"):
        return kind + _bounds(schema)
    if kind == "null":
        return "`null`"
    if kind == "string":
        return "text, not empty" if schema.get("minLength") else "text"
    return {"boolean": "`true` or `false`"}.get(kind, str(kind))


def _yaml(value) -> str:
    """A default as params.yaml writes it."""
    if value is None or isinstance(value, bool):
        return {None: "null", True: "true", False: "false"}[value]
    if isinstance(value, list | tuple):
        return f"[{', '.join(_yaml(item) for item in value)}]"
    if isinstance(value, dict):
        return f"{{{', '.join(f'{key}: {_yaml(item)}' for key, item in value.items())}}}"
    return _number(value) if isinstance(value, int | float) else str(value)


def _meaning(field) -> str:
    """The field's description, then what its validators ask (their docstrings)."""
    if field.description is None and field.is_required() and get_origin(field.annotation) is Literal:
        return "Picks this one."  # a union member's `name`
    checks = [rule.func.__doc__ for rule in field.metadata if isinstance(rule, AfterValidator) and rule.func.__doc__]
    return " ".join([field.description or "", *checks]).strip().replace("|", "\\|")


def _is_list(field) -> bool:
    return get_origin(field.annotation) is list


def _section(model: type[BaseModel], prefix: str, level: int) -> list[str]:
    """The table of a model's settings (nested models inline, as dotted keys), then one section per union member."""
    rows, unions, properties = [], [], model.model_json_schema()["properties"]
    for name, field in model.model_fields.items():
        members = _models(field.annotation)
        default = field.get_default(call_default_factory=True)
        one_of_its_kind = members == [field.annotation] and "name" not in field.annotation.model_fields
        if one_of_its_kind:  # a nested mapping, such as ingest.split: its row, then its keys'
            rows.append(f"| `{prefix}{name}` | mapping | `{_yaml(default.model_dump())}` | {_meaning(field)} |")
            rows += [row for row in _section(field.annotation, f"{prefix}{name}.", level)[2:] if row.startswith("| `")]
            continue
        shown = (
            "required"
            if field.is_required()
            else f"`{variant(type(default))}`"
            if isinstance(default, BaseModel)
            else f"`{_yaml(default)}`"
        )
        rows.append(f"| `{prefix}{name}` | {_kind(properties[name])} | {shown} | {_meaning(field)} |")
        if members:  # one_of's members, even a single one (train.model, until a second model comes)
            unions.append((name, members))
    lines = ["| key | type | default | meaning |", "|---|---|---|---|", *rows]
    for name, members in unions:
        listed = _is_list(model.model_fields[name])  # keys of a list's items are shown without a prefix
        lines += ["", f"{'#' * level} `{prefix}{name}`{' items' if listed else ''}: one of these, by `name`"]
        for member in members:
            about = [" ".join(member.__doc__.split()), ""] if member.__doc__ else []
            lines += [
                "",
                f"{'#' * (level + 1)} `{variant(member)}`",
                "",
                *about,
                *_section(member, "" if listed else f"{prefix}{name}.", level + 2),
            ]
    return lines


def markdown() -> str:
    """docs/params.md: every setting of params.yaml with its type, default and meaning, read from this schema."""
    lines = [
        "# params.yaml reference",
        "",
        f"<!-- Generated from tasks/common/params.py by `{DOC_COMMAND}`; edit the schema, not this page. -->",
        "",
        "Every setting `params.yaml` can hold, grouped by stage, with its type, its default and what it",
        "does. A setting left out takes its default; an unknown key or a value out of range stops any",
        "stage before it works, with one sentence naming the key. This page is generated from the schema",
        f"in `tasks/common/params.py`: after changing it, run `{DOC_COMMAND}`",
        "(`tests/project/test_params_doc.py` fails while the page and the schema differ).",
    ]
    for stage, field in Params.model_fields.items():
        model = field.annotation
        lines += ["", f"## {stage}", "", " ".join(model.__doc__.split()), "", *_section(model, f"{stage}.", 3)]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    import argparse

    from tasks.common.errors import run_cli

    parser = argparse.ArgumentParser(
        description="Check params.yaml against the schema, or print the settings reference."
    )
    parser.add_argument("--markdown", action="store_true", help=f"print docs/params.md: {DOC_COMMAND}")
    arguments = parser.parse_args()

    def check() -> None:
        load_params()
        print(f"{PARAMS_FILE} is valid.")

    run_cli((lambda: print(markdown(), end="")) if arguments.markdown else check)
