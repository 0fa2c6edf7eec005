"""A training run's state after each epoch, so that a killed run resumes where it stopped and ends the same.

DVC deletes a stage's outputs before rerunning it, so the state lives outside them, in
.augflow/resume/<arm>-seed-<seed>-<where>-<key>: `where` hashes the model's path (runs of other
projects or study sizes never meet), `key` what the run's result depends on (its training
params, set file and validation index, which name every image by its pixel hash), so a run whose
inputs changed starts afresh and removes the stale state. Each epoch's state is a folder built
beside the last and renamed into place: a kill mid-save leaves the previous one whole. A finished
run removes its folder.

A resumed run ends as an uninterrupted one because it gets back the weights and the optimizer's
state (Keras' .weights.h5 holds both), every finished epoch's logs (replayed into dvclive, so its
curves come back whole), train.checkpoint best_val's best epoch and weights, and the training
order of the epochs to come (tasks/common/data.py, tasks/train/online.py).
"""

import hashlib
import json
import shutil
from pathlib import Path

import keras
import numpy as np

from tasks.common.files import atomic_directory
from tasks.common.params import TrainParams
from tasks.common.paths import SPLIT_INDEX

WEIGHTS, BEST_WEIGHTS, STATE = "weights.weights.h5", "best.npz", "state.json"


def _digest(*parts: bytes) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(hashlib.sha256(part).digest())
    return digest.hexdigest()[:16]


class Resume(keras.callbacks.Callback):
    """Saves the run after every epoch; restores the last saved epoch when training begins."""

    def __init__(
        self,
        resume_dir: Path,
        model_path: Path,
        params: TrainParams,
        set_csv: Path,
        val_dir: Path,
        best_val: keras.callbacks.EarlyStopping | None,
    ) -> None:
        super().__init__()
        prefix = f"{model_path.parent.name}-{model_path.stem}-{_digest(str(model_path.resolve()).encode())[:8]}"
        key = _digest(  # the set file and the validation index name every image by its pixel hash
            params.model_dump_json(exclude={"arms", "seeds"}).encode(),
            set_csv.read_bytes(),
            (val_dir / SPLIT_INDEX).read_bytes(),
        )
        self.folder, self.best_val = resume_dir / f"{prefix}-{key}", best_val
        for stale in resume_dir.glob(f"{prefix}-*"):
            if stale != self.folder:
                shutil.rmtree(stale)
        saved = sorted(self.folder.glob("epoch-*"), key=lambda path: int(path.name.removeprefix("epoch-")))
        self.saved = saved[-1] if saved else None
        self.state = json.loads((self.saved / STATE).read_text()) if self.saved else {"logs": []}

    @property
    def finished_epochs(self) -> int:
        return len(self.state["logs"])

    def on_train_begin(self, logs=None) -> None:  # after EarlyStopping's, which resets its own state
        if self.saved is None:
            return
        self.model.optimizer.build(self.model.trainable_variables)  # Keras builds it lazily; unbuilt, it would not load
        self.model.load_weights(self.saved / WEIGHTS)
        if self.best_val:
            self.best_val.best, self.best_val.best_epoch, self.best_val.wait = self.state["best"]
            with np.load(self.saved / BEST_WEIGHTS) as saved:
                self.best_val.best_weights = [saved[f"arr_{number}"] for number in range(len(saved.files))]

    def on_epoch_end(self, epoch: int, logs=None) -> None:  # after EarlyStopping's, which updates its best
        if epoch + 1 == self.params["epochs"]:  # not after the last: a run killed before saving its model redoes that
            return  # epoch, so that a resumed run always ends in a fit that ran, as an uninterrupted one does
        self.state["logs"].append(logs)
        if self.best_val:
            self.state["best"] = [self.best_val.best, self.best_val.best_epoch, self.best_val.wait]
        with atomic_directory(self.folder / f"epoch-{epoch + 1}") as staging:
            self.model.save_weights(staging / WEIGHTS)
            if self.best_val:
                np.savez(staging / BEST_WEIGHTS, *self.best_val.best_weights)
            (staging / STATE).write_text(json.dumps(self.state))
        for older in self.folder.glob("epoch-*"):
            if older.name != f"epoch-{epoch + 1}":
                shutil.rmtree(older)

    def finish(self) -> None:
        """The run's model is saved: its state is of no more use."""
        shutil.rmtree(self.folder, ignore_errors=True)
