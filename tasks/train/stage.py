"""Stage `train`: fit train.model's model (the classic demonstration's CNN by default) for one (arm, seed).

Every arm trains the same model; only its training set differs (the set file
`data/sets/<arm>/seed-<seed>.csv`: each seed has its own subset of the images). Keras is seeded and TensorFlow's
ops made deterministic, so a (arm, seed) pair trains the same way on every run.

Each run's wall time is kept outside its outputs (see tasks/common/times.py), and so is its state after
each epoch: a killed run resumes at the next epoch and ends as an uninterrupted one (tasks/train/resume.py).
"""

import argparse
import json
import math
import sys
import tempfile
import time
import zipfile
from pathlib import Path
from types import ModuleType

from dvclive import Live


def _import_keras() -> ModuleType:
    """Keras and TensorFlow (which imports Keras too), imported without scikit-learn and matplotlib.

    Keras imports both when they are installed, for its scikit-learn wrappers and image galleries,
    which training never uses; they took 1.5 s of each run's 5.4 s start here (docs/performance.md).
    A None entry in sys.modules makes their import fail, which Keras allows for; the entries go
    again afterwards, so later imports of either work as usual.
    """
    unused = [name for name in ("sklearn", "matplotlib") if name not in sys.modules]
    sys.modules.update(dict.fromkeys(unused, None))
    try:
        import keras
    finally:
        for name in unused:
            if sys.modules.get(name, ...) is None:
                del sys.modules[name]
    return keras


keras = _import_keras()  # before anything that imports Keras or TensorFlow

import tensorflow as tf  # noqa: E402
from dvclive.keras import DVCLiveCallback  # noqa: E402

from tasks.common.arms import arm_named  # noqa: E402
from tasks.common.data import image_dataset, set_examples, split_examples  # noqa: E402
from tasks.common.errors import UserError  # noqa: E402
from tasks.common.files import atomic_path  # noqa: E402
from tasks.common.params import TrainParams, load_params  # noqa: E402
from tasks.common.paths import LIVE_DIR, MODELS_DIR, RESUME_DIR, SETS_DIR, TIMES_DIR, VAL_DIR
from tasks.common.times import record_seconds  # noqa: E402
from tasks.train.models import build  # noqa: E402
from tasks.train.online import online_dataset  # noqa: E402
from tasks.train.resume import Resume  # noqa: E402

STEPS_PER_EXECUTION = 16


def build_model(
    input_shape: tuple[int, ...], num_classes: int, params: TrainParams, batches_per_epoch: int
) -> keras.Model:
    """train.model's model (tasks/train/models.py), compiled, calling into TensorFlow once per several batches."""
    model = build(input_shape, num_classes, params.model)
    # Several batches per call into TensorFlow: the same steps in the same order (byte-identical models), 10-15%
    # less wall time here (docs/performance.md). Set after compiling, so the saved model's config is as before.
    # A shorter epoch gains nothing and pays for tracing the loop.
    model.steps_per_execution = STEPS_PER_EXECUTION if batches_per_epoch >= STEPS_PER_EXECUTION else 1
    return model


def _renumber_shared_objects(config, numbers: dict) -> None:
    """Replace each shared_object_id (a memory address) by its rank of first appearance, in place."""
    if isinstance(config, dict):
        if "shared_object_id" in config:
            config["shared_object_id"] = numbers.setdefault(config["shared_object_id"], len(numbers))
        for value in config.values():
            _renumber_shared_objects(value, numbers)
    elif isinstance(config, list):
        for value in config:
            _renumber_shared_objects(value, numbers)


def save_model(model: keras.Model, path: Path) -> None:
    """Save a .keras archive whose bytes depend on the model alone, so equal runs get equal DVC hashes.

    Keras writes the time of saving (metadata.json's date_saved, the weights member's date) and
    objects' memory addresses (config.json's shared_object_id) into the archive: the first two are
    cleared, the addresses renumbered in order. The file appears whole or not at all.
    """
    with tempfile.TemporaryDirectory() as scratch:
        saved = Path(scratch) / "model.keras"
        model.save(saved)
        with atomic_path(path) as temporary:
            with zipfile.ZipFile(saved) as source, zipfile.ZipFile(temporary, "w") as target:
                for member in source.infolist():
                    data = source.read(member)
                    if member.filename in ("metadata.json", "config.json"):
                        content = json.loads(data)
                        content.pop("date_saved", None)
                        _renumber_shared_objects(content, {})
                        data = json.dumps(content).encode()
                    target.writestr(zipfile.ZipInfo(member.filename), data, compress_type=member.compress_type)


def train(
    arm: str,
    seed: int,
    params: TrainParams,
    sets_dir: Path = SETS_DIR,
    val_dir: Path = VAL_DIR,
    models_dir: Path = MODELS_DIR,
    live_dir: Path = LIVE_DIR,
    times_dir: Path = TIMES_DIR,
    resume_dir: Path = RESUME_DIR,
) -> Path:
    """Train one model on sets_dir/<arm>/seed-<seed>.csv; write models_dir/<arm>/seed-<seed>.keras (the last epoch's
    weights, or with train.checkpoint best_val its best validation epoch's), its curves and chosen epoch under
    live_dir and its wall time (from reading the set to the saved model) under times_dir. A run killed after epoch k
    resumes at epoch k + 1 from its state under resume_dir."""
    started = time.perf_counter()
    set_csv = sets_dir / arm / f"seed-{seed}.csv"
    if not set_csv.is_file():
        raise UserError(f"{set_csv} is missing: arm '{arm}' has no training set; run 'dvc repro' to build it.")
    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()
    examples, names = set_examples(set_csv)
    classes = sorted(set(names))
    model_path = models_dir / arm / f"seed-{seed}.keras"
    keep_best = params.checkpoint == "best_val"
    # Keeps the weights of the epoch with the best validation accuracy (the earliest of equal ones) and restores
    # them at the end; a patience of every epoch means it never stops training early.
    best_val = keras.callbacks.EarlyStopping(
        "val_accuracy", mode="max", patience=params.epochs, restore_best_weights=True
    )
    resume = Resume(resume_dir, model_path, params, set_csv, val_dir, best_val if keep_best else None)
    start = resume.finished_epochs
    if start:
        print(
            f"train: {arm} seed {seed}: resuming at epoch {start + 1} of {params.epochs} from {resume.folder}",
            flush=True,
        )
    if arm_named(arm).drawn_on_the_fly:
        train_data, steps, per_epoch = online_dataset(
            set_csv, classes, params.batch_size, params.epochs, seed, first_epoch=start
        )
    else:
        train_data = image_dataset(examples, names, classes, params.batch_size, shuffle_seed=seed, skip_epochs=start)
        steps, per_epoch = None, len(examples)
    val_data = image_dataset(*split_examples(val_dir), classes, params.batch_size)
    batches = steps or math.ceil(per_epoch / params.batch_size)
    model = build_model(train_data.element_spec[0].shape[1:], len(classes), params, batches)
    with Live(str(live_dir / f"{arm}-seed-{seed}"), dvcyaml=False, save_dvc_exp=False) as live:
        live.log_params(
            {
                "arm": arm,
                "seed": seed,
                "images": len(examples),
                "presentations_per_epoch": per_epoch,
                "classes": classes,
            }
        )
        curves = DVCLiveCallback(live=live)
        for epoch, logs in enumerate(resume.state["logs"]):  # the finished epochs' curves, logged as they were
            curves.on_epoch_end(epoch, logs)
        model.fit(
            train_data,
            validation_data=val_data,
            epochs=params.epochs,
            initial_epoch=start,
            steps_per_epoch=steps,
            shuffle=False,
            verbose=2,
            callbacks=[curves, *([best_val] if keep_best else []), resume],
        )
        live.log_params(
            {"checkpoint": params.checkpoint, "chosen_epoch": best_val.best_epoch + 1 if keep_best else params.epochs}
        )
    save_model(model, model_path)
    resume.finish()
    seconds = time.perf_counter() - started
    shown = per_epoch * (params.epochs - start) * math.prod(train_data.element_spec[0].shape[1:])
    record_seconds(model_path, seconds, times_dir, pixels_shown=shown)
    print(f"train: {arm} seed {seed}, {per_epoch} images per epoch, {seconds:.0f} s -> {model_path}")
    return model_path


def warn_without_avx2(cpuinfo: Path = Path("/proc/cpuinfo")) -> None:
    """augflow's kernel path (tasks/common/numerics.py) runs AVX2 kernels; a CPU without AVX2 runs others, and trains
    other numbers."""
    if cpuinfo.is_file() and " avx2" not in cpuinfo.read_text():
        print(
            "augflow: this CPU has no AVX2, so its models will differ slightly from those of the machines augflow's "
            "published numbers come from (docs/guarantees.md).",
            file=sys.stderr,
        )


def main() -> None:
    warn_without_avx2()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arm", required=True, help="training set to use: data/sets/<arm>/seed-<seed>.csv")
    parser.add_argument("--seed", required=True, type=int)
    args = parser.parse_args()
    params = load_params().train
    if args.seed not in params.seeds:
        raise UserError(f"seed {args.seed} is not in train.seeds {params.seeds} in params.yaml: add it there first.")
    train(args.arm, args.seed, params)
