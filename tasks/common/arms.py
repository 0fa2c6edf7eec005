"""The arms augflow compares, each defined once: what it trains on, and what it is compared with and why.

Every arm trains the same model on the same seeds and is scored on the same test split; arms differ in their
training set alone, data/sets/<arm>/seed-<s>.csv, which lists each image it shows with its pixel hash. An entry
says how that set is built from the seed's originals and how training reads it, how many images it shows per
epoch, which arms are compared with it, and how the settings reference describes it. The report, the metrics
and every file call it by its name.

An arm named after a policy (evaluate.compare_policies) is built like augmented, under that policy: `arm_named`.
Adding an arm: docs/extending.md.
"""

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tasks.common.params import AugmentParams

# The rows of an arm's set file from one seed's originals and their stored copies (none for an arm that lists none).
SetBuilder = Callable[[list[dict], list[dict], "AugmentParams"], list[dict]]


def originals_and_copies(originals: list[dict], copies: list[dict], params: "AugmentParams") -> list[dict]:
    return originals + copies


def originals_repeated(originals: list[dict], copies: list[dict], params: "AugmentParams") -> list[dict]:
    return [row for row in originals for _ in range(1 + params.copies)]


def originals_with_policy(originals: list[dict], copies: list[dict], params: "AugmentParams") -> list[dict]:
    """Each original with the policy and its draws per epoch, so that DVC reruns the arm when either changes."""
    policy = params.model_dump_json()
    return [{**row, "copies": params.copies, "policy": policy} for row in originals]


@dataclass(frozen=True)
class Arm:
    name: str
    about: str  # what it trains on and why it is there, in the settings reference (docs/params.md)
    training_set: SetBuilder | None  # the rows the augment stage writes; None: ingest writes the originals' set
    lists_copies: bool  # its set lists the copies augment stores in data/augmented, so augment makes them first
    drawn_on_the_fly: bool  # training draws the policy's transforms itself (tasks/train/online.py), nothing stored
    per_original: Callable[[int], int]  # images shown per epoch for each original, given augment.copies
    control_for: tuple[str, ...] = ()  # arms compared with this one beyond the baseline: "<treated>-vs-<this>"


ARMS = {
    arm.name: arm
    for arm in (
        Arm(
            "original",
            about="the seed's training images as they are, the baseline every arm is compared with",
            training_set=None,
            lists_copies=False,
            drawn_on_the_fly=False,
            per_original=lambda copies: 1,
        ),
        Arm(
            "augmented",
            about="the originals plus augment.copies stored copies of each under augment.policy",
            training_set=originals_and_copies,
            lists_copies=True,
            drawn_on_the_fly=False,
            per_original=lambda copies: 1 + copies,
            control_for=("online",),  # the same policy and images per epoch, drawn fresh each epoch or stored once
        ),
        Arm(
            "repeated",
            about="each original listed 1 + augment.copies times, untransformed, which takes as many training steps "
            "as augmented and online, so that what they gain over it is the transforms'",
            training_set=originals_repeated,
            lists_copies=False,
            drawn_on_the_fly=False,
            per_original=lambda copies: 1 + copies,
            control_for=("augmented", "online"),  # the comparisons that isolate augmentation from extra training
        ),
        Arm(
            "online",
            about="the originals, each shown once per epoch plus augment.copies fresh draws of augment.policy, "
            "made on the fly inside tf.data and never stored",
            training_set=originals_with_policy,
            lists_copies=False,
            drawn_on_the_fly=True,
            per_original=lambda copies: 1 + copies,
        ),
    )
}
BASELINE = "original"
# The sets the augment stage writes: its data/sets outs in dvc.yaml (tests/project/test_dependencies.py checks).
BUILT_BY_AUGMENT = tuple(name for name, arm in ARMS.items() if arm.training_set is not None)


def arm_named(name: str) -> Arm:
    """The arm of that name; one named after a compared policy is augmented under that policy, and only
    compared with the baseline."""
    if name in ARMS:
        return ARMS[name]
    return replace(ARMS["augmented"], name=name, about=f"augmented under the {name} policy", control_for=())


def baseline_arm(arms: list[str]) -> str:
    """The arm the others are compared with: original when it is trained, else the first arm of train.arms."""
    return BASELINE if BASELINE in arms else arms[0]


def comparison_pairs(arms: list[str]) -> dict[str, tuple[str, str]]:
    """(treated, control) of every comparison among the trained arms, in the report's order.

    Every arm against the baseline, keyed by the arm; then, control by control in the registry's order, each arm of
    its control_for against it, keyed "<treated>-vs-<control>": the comparisons that isolate augmentation. A pair
    is compared once: where the baseline is one of an isolating pair, that comparison stands.
    """
    isolating = [
        (treated, control.name)
        for control in ARMS.values()
        if control.name in arms
        for treated in control.control_for
        if treated in arms
    ]
    baseline = baseline_arm(arms)
    pairs = {arm: (arm, baseline) for arm in arms if arm != baseline and {arm, baseline} not in map(set, isolating)}
    return pairs | {f"{treated}-vs-{control}": (treated, control) for treated, control in isolating}
