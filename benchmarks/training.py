"""Training throughput of the default model: the input pipeline against an in-memory floor, old code against new.

Run from a project where `dvc repro augment` ran on the params to study (the
default params: the augmented arm shows 10,500 images of 28x28 per epoch):

    .venv/bin/python benchmarks/training.py [--epochs 10] [--rounds 1] [--baseline REF]

Each variant is one `tasks.train.train` run of the augmented arm, seed 0, in a
fresh process, into a scratch folder (the project's models are not touched):

- baseline: the code of git ref --baseline (its tasks/ unpacked into a scratch folder),
  on one thread per op as that code ran;
- new: this checkout's code, on its two threads per op (tasks/common/numerics.py);
- floor: this checkout's code, the training set decoded into memory first and fed
  as a tensor (tf.data from_tensor_slices, the same shuffle): input costs nothing.
  tasks/common/data.py now feeds a set that fits in memory the same way; the harness keeps
  its own copy on purpose, so the floor stays a fixed reference when that code changes;
- xla / steps_per_execution 1 / 1 intra-op thread: this checkout's code with one
  setting changed (steps_per_execution 1: one batch per call into TensorFlow, as
  before tasks/train/stage.py set 16; 1 intra-op thread: as before tasks/common/numerics.py set
  two); these may change the model's numbers, so they are measured.
  Keras 3.15 turns `jit_compile` off, with a warning, while TensorFlow's op
  determinism is on (trainer.model_supports_jit), so the XLA variant runs without
  XLA. This TensorFlow links no OpenMP library: oneDNN's kernels run on
  TensorFlow's intra-op thread pool.

Per variant: the run's wall time (train() alone, and the whole process with
TensorFlow's start-up), steady-state training images/s (the median of epochs 2
on, validation left out) and the saved model's SHA-256 (equal to the baseline's
means a byte-identical model). The variants run in turns, `rounds` times;
medians. FLOP/s: FLOPs per training image from the layer shapes (3x the forward
pass), against the CPU's peak (benchmarks/machine.py). Writes
benchmarks/results/training.json and prints a table.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.machine import RESULTS_DIR, machine, peak_gflops_per_core  # noqa: E402
from tasks.common.files import write_text_atomic  # noqa: E402
from tasks.common.params import TrainParams, load_params  # noqa: E402

RESULTS = RESULTS_DIR / "training.json"
BASELINE = "89656c6"  # main before the decoded set was cached (issue 12): the "old code"
ARM, SEED = "augmented", 0
# name: (code: baseline or new, what the harness changes, environment over augflow's)
VARIANTS = {
    "baseline": ("baseline", {}, {"TF_NUM_INTRAOP_THREADS": "1"}),  # that code ran one thread per op
    "new": ("new", {}, {}),
    "floor (in-memory tensor)": ("new", {"memory": True}, {}),
    "XLA (jit_compile)": ("new", {"jit": True}, {}),
    "steps_per_execution 1": ("new", {"steps_per_execution": 1}, {}),  # new, one batch per call as before
    "1 intra-op thread": ("new", {}, {"TF_NUM_INTRAOP_THREADS": "1"}),  # new, one thread per op as before
}
# One run in a fresh process: patches tasks.train's own names, times each epoch, prints a JSON line.
HARNESS = (
    f"ARM, SEED = {ARM!r}, {SEED!r}\n"
    + """
import hashlib, json, sys, time
from pathlib import Path
sys.path.insert(0, sys.argv[1])
options, epochs, scratch = json.loads(sys.argv[2]), int(sys.argv[3]), Path(sys.argv[4])
import tasks.train.stage as train_module  # first, as in a stage's process: it imports Keras its own way
import keras, numpy as np, tensorflow as tf
from tasks.common.params import load_params

class Clock(keras.callbacks.Callback):
    seconds = []
    def on_epoch_begin(self, epoch, logs=None):
        self.start = time.perf_counter()
    def on_test_begin(self, logs=None):
        self.seconds.append(time.perf_counter() - self.start)

build_model, image_dataset = train_module.build_model, train_module.image_dataset

def build(*arguments):
    model = build_model(*arguments)
    model.jit_compile = options.get("jit", False)
    model.steps_per_execution = options.get("steps_per_execution", model.steps_per_execution)
    fit = model.fit
    model.fit = lambda *a, callbacks=(), **k: fit(*a, callbacks=[*callbacks, Clock()], **k)
    return model

def in_memory(paths, names, classes, batch_size, shuffle_seed=None, skip_epochs=0):  # a fresh run: nothing to skip
    dataset = image_dataset(paths, names, classes, batch_size)
    if shuffle_seed is None:
        return dataset
    images, labels = (np.concatenate(part) for part in zip(*dataset.as_numpy_iterator()))
    tensors = tf.data.Dataset.from_tensor_slices((images, labels))
    shuffled = tensors.shuffle(len(labels), seed=shuffle_seed, reshuffle_each_iteration=True)
    return shuffled.batch(batch_size).prefetch(tf.data.AUTOTUNE)

train_module.build_model = build
if options.get("memory"):
    train_module.image_dataset = in_memory
params = load_params().train.model_copy(update={"epochs": epochs})
start = time.perf_counter()
path = train_module.train(
    ARM, SEED, params, models_dir=scratch / "models", live_dir=scratch / "live", times_dir=scratch / "times"
)
seconds = time.perf_counter() - start
digest = hashlib.sha256(path.read_bytes()).hexdigest()
print(json.dumps({"train_seconds": seconds, "epoch_seconds": Clock.seconds, "model_sha256": digest}))
"""
)


class VariantFailed(Exception):
    """A variant's run failed; its last line of error output says why."""


def flops_per_image(input_shape: tuple[int, int, int], params: TrainParams, classes: int = 2) -> float:
    """Training FLOPs per image of the cnn model (tasks/train/models.py): 3x the forward pass's multiply-adds x 2
    (pooling ignored)."""
    model, (height, width, channels) = params.model, input_shape
    forward = 0
    for filters in model.conv_filters:
        height, width = height - model.kernel_size + 1, width - model.kernel_size + 1
        forward += height * width * filters * model.kernel_size**2 * channels
        height, width, channels = height // 2, width // 2, filters
    features = height * width * channels
    for units in [*model.dense_units, 1 if classes == 2 else classes]:
        forward += features * units
        features = units
    return 3 * 2 * forward


def baseline_tree(ref: str, folder: Path) -> Path:
    """The tasks/ package of git ref `ref`, unpacked into folder."""
    archive = subprocess.run(["git", "archive", ref, "tasks"], cwd=ROOT, check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True)
    return folder


def run_variant(name: str, tree: Path, epochs: int, scratch: Path) -> dict:
    _, options, env = VARIANTS[name]
    start = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-c", HARNESS, str(tree), json.dumps(options), str(epochs), str(scratch)],
        env=os.environ | env,
        capture_output=True,
        text=True,
    )
    if result.returncode:  # a setting this TensorFlow refuses (say, XLA with deterministic ops) is reported, not fatal
        raise VariantFailed(
            result.stderr.strip().splitlines()[-1] if result.stderr.strip() else f"exit status {result.returncode}"
        )
    record = json.loads(result.stdout.strip().splitlines()[-1])
    return record | {"process_seconds": time.perf_counter() - start}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=None, help="epochs per run (default: train.epochs)")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument(
        "--baseline", default=BASELINE, help=f"git ref of the code to compare with (default {BASELINE})"
    )
    parser.add_argument("--only", nargs="+", choices=list(VARIANTS), default=list(VARIANTS))
    args = parser.parse_args()
    params = load_params().train
    epochs = args.epochs or params.epochs
    images = sum(1 for _ in open(Path("data/sets") / ARM / f"seed-{SEED}.csv")) - 1
    load_before = os.getloadavg()[0]
    runs, failed = {name: [] for name in args.only}, {}
    with tempfile.TemporaryDirectory(prefix="augflow-bench-") as scratch:
        trees = {"baseline": baseline_tree(args.baseline, Path(scratch)), "new": ROOT}
        for round_ in range(args.rounds):
            for name in args.only:
                try:
                    runs[name].append(
                        run_variant(name, trees[VARIANTS[name][0]], epochs, Path(scratch) / f"{round_}-{name}")
                    )
                except VariantFailed as failure:
                    failed[name] = str(failure)
                    print(f"{name:<26} failed: {failure}", flush=True)
                    continue
                steady = images / statistics.median(
                    runs[name][-1]["epoch_seconds"][1:] or runs[name][-1]["epoch_seconds"]
                )
                print(f"{name:<26} {runs[name][-1]['train_seconds']:>7.1f} s  {steady:>6.0f} images/s", flush=True)
    flops = flops_per_image((28, 28, 1), params)
    peak = peak_gflops_per_core()
    summary = {}
    for name, records in runs.items():
        if not records:
            continue
        rate = statistics.median(
            images / statistics.median(r["epoch_seconds"][1:] or r["epoch_seconds"]) for r in records
        )
        summary[name] = {
            "train_seconds": round(statistics.median(r["train_seconds"] for r in records), 1),
            "process_seconds": round(statistics.median(r["process_seconds"] for r in records), 1),
            "steady_images_per_s": round(rate),
            "gflops_per_s": round(rate * flops / 1e9, 1),
            "model_sha256": sorted({r["model_sha256"] for r in records}),
        }
    reference = summary.get("baseline", {}).get("model_sha256")
    for name, figures in summary.items():
        figures["same_model_as_baseline"] = figures["model_sha256"] == reference
        for base in ("baseline", "floor (in-memory tensor)"):
            if base in summary and name != base:
                key = "vs_floor_throughput" if base.startswith("floor") else "vs_baseline_seconds"
                figure = "steady_images_per_s" if key == "vs_floor_throughput" else "train_seconds"
                figures[key] = round(figures[figure] / summary[base][figure], 3)
    result = {
        "machine": machine(),
        "load_average_1min_before": round(load_before, 2),
        "setup": {
            "arm": ARM,
            "seed": SEED,
            "images_per_epoch": images,
            "epochs": epochs,
            "rounds": args.rounds,
            "baseline": args.baseline,
        },
        "flops_per_training_image": flops,
        "peak_gflops_per_core": peak,
        "variants": summary,
        "failed": failed,
        "runs": runs,
    }
    write_text_atomic(RESULTS, json.dumps(result, indent=2) + "\n")
    print(f"{flops / 1e6:.1f} MFLOP per training image; peak {peak:.0f} GFLOP/s per core")
    for name, figures in summary.items():
        print(f"{name:<26} {json.dumps({k: v for k, v in figures.items() if k != 'model_sha256'})}")


if __name__ == "__main__":
    main()
