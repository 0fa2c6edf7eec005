"""What the study's runs and its summary share: the arm every gain is measured against, and a run's file name."""

from tasks.common.arms import BASELINE  # every arm's gain per size is measured against it
from tasks.common.errors import UserError
from tasks.common.params import Params


def run_name(size: int, arm: str, seed: int) -> str:
    return f"{size}-{arm}-{seed}"


def check_baseline(params: Params) -> None:
    if BASELINE not in params.train.arms:
        raise UserError(
            f"The scaling study measures each arm's gain over {BASELINE}: add {BASELINE} to train.arms in params.yaml."
        )
