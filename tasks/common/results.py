"""What evaluate and the scaling study write, as typed models: reports/metrics.json (Metrics) and reports/scaling.json
(Scaling).

Every writer builds the model and writes it with write_result; every reader gets it back with read_result, which
validates the file, so a field renamed on one side fails at once instead of a KeyError far away. The JSON is written
as before the models (json.dumps: Python's float repr, ASCII escapes, two-space indent), byte for byte.
docs/metrics.schema.json and docs/scaling.schema.json are generated from these models (SCHEMA_COMMAND).
"""

import argparse
import json
from pathlib import Path
from typing import Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, SerializerFunctionWrapHandler, ValidationError, model_serializer

from tasks.common.errors import UserError
from tasks.common.files import write_text_atomic

SCHEMA_COMMAND = "python -m tasks.common.results --schema {name} > docs/{name}.schema.json"

Interval = tuple[float, float]
VerdictKind = Literal["improves", "hurts", "equivalent", "inconclusive"]


class Record(BaseModel):
    """A result as written: no key it does not declare, no value of another type (a number in quotes), and no change
    after it is made."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


# ---- reports/metrics.json ----


class Score(Record):
    """One score of one arm over seeds."""

    mean: float
    ci95: Interval | None = Field(description="t-interval over seeds at `confidence`; null from one seed.")
    runs: list[float] = Field(description="The score of each seed's model, in the order of `seeds`.")
    seeds: list[int]


class Confusion(Record):
    labels: list[str]
    counts: list[list[int]] = Field(description="Rows: actual class; columns: predicted; summed over seeds.")
    pooled_over_seeds: int


class Budget(Record):
    """The images an arm's runs show: the same per epoch for augmented, online and repeated."""

    presentations_per_epoch: int
    epochs: int
    presentations: int
    chosen_epochs: list[int] = Field(description="The epoch whose weights each seed's run kept (train.checkpoint).")


class ArmResult(Record):
    test_accuracy: Score
    balanced_accuracy: Score
    macro_f1: Score
    roc_auc: Score | None = Field(
        None, exclude_if=lambda value: value is None, description="Two classes only; absent otherwise."
    )
    per_class_recall: dict[str, float] = Field(description="Mean over seeds, by class name.")
    confusion_matrix: Confusion
    budget: Budget


class McNemar(Record):
    treated_only_correct: int
    baseline_only_correct: int
    p_value: float
    test: str = "exact McNemar on per-image predictions pooled over seeds"


class Comparison(Record):
    """treated (`arm`) against `baseline`, paired by seed; differences are fractions (0.01 is one point)."""

    arm: str
    baseline: str
    delta_mean: float
    ci95: Interval | None
    p_value: float | None = Field(description="Paired t-test; null from one seed.")
    p_value_holm: float | None = Field(description="Holm-adjusted over the `comparisons` made.")
    comparisons: int
    test: str = "paired t-test over seeds"
    mcnemar: McNemar
    verdict_kind: VerdictKind
    tost_p: float | None
    ci90: Interval | None = Field(description="The equivalence (TOST) interval, at 2 `confidence` - 1.")
    seeds_needed: int | None = Field(description="Inconclusive only: about how many seeds in all would decide it.")
    verdict: str


class Dataset(Record):
    """Images per split; `train` is each seed's originals, `augmented` the stored copies added to them."""

    val: int
    test: int
    train: int
    augmented: int
    classes: list[str]


class PolicyChoice(Record):
    chosen: str
    by: str
    validation_accuracy: dict[str, float]


class Metrics(Record):
    """reports/metrics.json: every score of every arm and every paired comparison (docs/verdict.md)."""

    arms: dict[str, ArmResult]
    comparison: Comparison = Field(description="The first of `comparisons`, again.")
    comparisons: dict[str, Comparison] = Field(description="Keyed by arm, or <treated>-vs-<control>.")
    confidence: float
    equivalence_margin: float = Field(description="A fraction, like the differences: 0.01 is one point.")
    dataset: Dataset
    policy_choice: PolicyChoice | None = Field(description="null unless evaluate.compare_policies lists policies.")
    checkpoint: Literal["last", "best_val"]


# ---- reports/scaling.json ----


class SizeScore(Record):
    """An arm's test accuracy at one size, over seeds."""

    images_per_class: int
    mean: float
    ci95: Interval | None
    runs: list[float]


class SizeComparison(Record):
    """treated against control at one size, paired by seed."""

    images_per_class: int
    delta_mean: float
    ci95: Interval | None
    p_value: float | None
    p_value_holm: float | None
    ci90: Interval | None
    tost_p: float | None
    verdict_kind: VerdictKind


class Trend(Record):
    """The paired gain against log2(images per class); the three numbers are absent when too few sizes or seeds
    allow no fit (the sentence says so)."""

    slope_per_doubling: float | None = None
    ci95: Interval | None = None
    p_value: float | None = None
    model: str
    sentence: str

    @model_serializer(mode="wrap")
    def _without_fit_when_none(self, handler: SerializerFunctionWrapHandler) -> dict:
        written = handler(self)
        if self.slope_per_doubling is None:
            for name in ("slope_per_doubling", "ci95", "p_value"):
                written.pop(name, None)
        return written


class HolmFamily(Record):
    comparisons: int
    members: list[str]
    sizes: list[int]
    why: str


class Scaling(Record):
    """reports/scaling.json: the scaling study's summary (docs/scaling-study.md)."""

    confidence: float
    equivalence_margin: float
    seeds: list[int]
    sizes: list[int]
    test_accuracy: dict[str, list[SizeScore]]
    gain_over_original: dict[str, list[SizeComparison]]
    trend: dict[str, Trend]
    isolating: dict[str, list[SizeComparison]] = Field(description="Comparisons that isolate augmentation, by key.")
    isolating_trend: dict[str, Trend]
    holm_family: HolmFamily


# ---- writing and reading ----

Result = TypeVar("Result", Metrics, Scaling)


def result_json(result: Metrics | Scaling) -> str:
    """The file's text. json.dumps rather than pydantic's own JSON: the same float repr and ASCII escapes as
    every file written before the models existed."""
    return json.dumps(result.model_dump(), indent=2) + "\n"


def write_result(path: Path, result: Metrics | Scaling) -> None:
    write_text_atomic(path, result_json(result))


# What writes each file: named in the sentence a missing or unreadable one gives.
WRITTEN_BY = {Metrics: "'make run' (or 'dvc repro')", Scaling: "'make study'"}


def read_result(path: Path, model: type[Result]) -> Result:
    """The file as its model; a missing, foreign or older file is one sentence that names it and what to do."""
    if not path.is_file():
        raise UserError(f"{path} does not exist yet: run {WRITTEN_BY[model]} first.")
    try:
        return model.model_validate_json(path.read_bytes())
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(map(str, error["loc"]))
        problem = f"{where}: {error['msg']}" if where else error["msg"]
        raise UserError(
            f"{path} is not a {path.name} this augflow reads ({problem}): rerun {WRITTEN_BY[model]} to write it anew."
        ) from None


SCHEMAS = {"metrics": Metrics, "scaling": Scaling}


def schema(name: str) -> str:
    """docs/<name>.schema.json: the JSON schema of reports/<name>.json, from its model."""
    document = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$comment": f"Generated by `{SCHEMA_COMMAND.format(name=name)}`; do not edit.",
    }
    return json.dumps(document | SCHEMAS[name].model_json_schema(), indent=2) + "\n"


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--schema", choices=SCHEMAS, help=f"print a file's JSON schema: {SCHEMA_COMMAND}")
    name = parser.parse_args().schema
    if name:
        print(schema(name), end="")
