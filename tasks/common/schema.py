"""The pieces params.yaml's schema is built from, shared by tasks/common/params.py and the policies and transforms
that keep their settings beside their code (tasks/common/policies.py, tasks/common/transforms.py)."""

from typing import Annotated, Literal, Union, get_args

from pydantic import BaseModel, BeforeValidator, ConfigDict, Discriminator, Field, Tag

Positive = Annotated[int, Field(ge=1)]
Fraction = Annotated[float, Field(ge=0.0, le=1.0)]
FillMode = Literal["nearest", "constant", "reflect", "wrap"]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def ordered(pair: tuple[float, float] | None) -> tuple[float, float] | None:
    """Needs low <= high."""
    if pair is not None and pair[0] > pair[1]:
        raise ValueError("give [low, high] with low <= high")
    return pair


def variant(model: type[BaseModel]) -> str:
    """The name that picks this member of a union."""
    return get_args(model.model_fields["name"].annotation)[0]


def _named(value):
    """A bare name stands for that member with its defaults (`dvc exp run -S augment.policy=randaugment`)."""
    return {"name": value} if isinstance(value, str) else value


def one_of(*members: type[Strict]):
    """Settings that take one of several forms, told apart by their `name`. A mapping without a name is the first
    member (so ImageDataGenerator settings carry over as they are into the seed policy); a bare name is that member
    with its defaults."""
    default = variant(members[0])

    def name(value: dict | BaseModel) -> str:
        return value.get("name", default) if isinstance(value, dict) else value.name

    tagged = tuple(Annotated[member, Tag(variant(member))] for member in members)
    return Annotated[Union[tagged], Discriminator(name), BeforeValidator(_named)]  # noqa: UP007 (a runtime tuple)
