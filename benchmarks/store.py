"""A training run's input from its decoded store: speed against an in-memory floor, and memory, as the set grows.

Run from the project root after `make setup`:

    .venv/bin/python benchmarks/store.py [--steps 60] [--settings article fashion-5750]

Each setting is a set of real strips on disk, as augment writes them (each source image's 20 copies side by
side, one PNG per source image): `article`, the article's 538 colour photos of 150x150 (10,760 copies);
`fashion-5750`, all of two Fashion-MNIST classes' training images at 28x28 (11,500 sources, 230,000 copies).
The pixels are random: reading and training cost the same whatever they show. Each variant trains the
default CNN from that set in a fresh process, `--steps` batches of 32 an epoch for three epochs, and keeps
the last two (steady) epochs' images a second:

- memory: tasks/common/data.py's image_dataset, its store in memory (within the run's budget);
- mapped: the same, its store memory-mapped from disk ($AUGFLOW_DECODED_BYTES=1: over any budget);
- floor: the same decoded pixels as one in-memory tensor, batched by tf.data alone, nothing read per batch.

Also each variant's decoding seconds, and its peak anonymous memory (sampled every 20 ms: the process's own
memory, not the page cache a mapped store reads through) and peak resident memory (VmHWM, mapped pages
included). Writes benchmarks/results/store.json.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.machine import RESULTS_DIR, machine  # noqa: E402
from tasks.common.files import write_text_atomic  # noqa: E402

SETTINGS = {  # name: (source images, copies each, shape)
    "article": (538, 20, (150, 150, 3)),
    "fashion-5750": (11_500, 20, (28, 28)),
}
VARIANTS = ("memory", "mapped", "floor")
BATCH, EPOCHS = 32, 3


def write_set(folder: Path, sources: int, copies: int, shape: tuple[int, ...]) -> Path:
    """Strips of random pixels and the set file listing every copy, as augment writes them; the set's path."""
    import numpy as np

    from tasks.common.files import png_bytes, write_csv_atomic
    from tasks.common.sets import SET_COLUMNS

    rng = np.random.default_rng(0)
    rows = []
    for number in range(sources):
        name = ("a", "b")[number % 2]
        strip = rng.integers(0, 256, (shape[0], shape[1] * copies, *shape[2:]), dtype=np.uint8)
        path = folder / name / f"{number:05d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(png_bytes(strip, 1))
        rows += [
            {"path": str(path), "id": f"{number:05d}-{copy:03d}", "sha256": "", "class": name}
            | {"tile": copy, "tiles": copies}
            for copy in range(copies)
        ]
    write_csv_atomic(folder / "set.csv", [*SET_COLUMNS, "tile", "tiles"], rows)
    return folder / "set.csv"


def anonymous_peak(stop: threading.Event, peak: list[int]) -> None:
    while not stop.wait(0.02):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("RssAnon:"):
                peak[0] = max(peak[0], int(line.split()[1]))


def run_variant(set_csv: Path, variant: str, steps: int) -> dict:
    """In this process: decode, then train; the figures."""
    stop, peak = threading.Event(), [0]
    threading.Thread(target=anonymous_peak, args=(stop, peak), daemon=True).start()
    import keras
    import numpy as np
    import tensorflow as tf

    import tasks.common.numerics  # noqa: F401  augflow's numeric settings, as a stage has them
    from tasks.common import data
    from tasks.common.params import TrainParams
    from tasks.train.stage import build_model

    examples, names = data.set_examples(set_csv)
    classes = sorted(set(names))
    start = time.perf_counter()
    if variant == "floor":
        store = data.decode_store(examples)
        labels = np.array([classes.index(name) for name in names], dtype=np.int32)
        dataset = tf.data.Dataset.from_tensor_slices((store, labels)).shuffle(len(store), seed=0)
        dataset = dataset.batch(BATCH).prefetch(tf.data.AUTOTUNE)
    else:
        dataset = data.image_dataset(examples, names, classes, BATCH, shuffle_seed=0)
    decode_seconds = time.perf_counter() - start
    shape = dataset.element_spec[0].shape[1:]
    model = build_model(tuple(shape), len(classes), TrainParams(), steps)
    ends = []
    timer = keras.callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: ends.append(time.perf_counter()))
    begin = time.perf_counter()
    model.fit(dataset.repeat(), epochs=EPOCHS, steps_per_epoch=steps, verbose=0, callbacks=[timer])
    stop.set()
    status = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines() if ":" in line)
    return {
        "images_per_s": round((EPOCHS - 1) * steps * BATCH / (ends[-1] - ends[0]), 1),
        "first_epoch_seconds": round(ends[0] - begin, 2),
        "decode_seconds": round(decode_seconds, 2),
        "peak_anonymous_mb": round(peak[0] / 1024),
        "peak_resident_mb": round(int(status["VmHWM"].split()[0]) / 1024),
        "store_mb": round(len(examples) * int(np.prod(shape)) / 2**20),
    }


def measure(setting: str, steps: int, scratch: Path) -> dict:
    sources, copies, shape = SETTINGS[setting]
    set_csv = write_set(scratch / setting, sources, copies, shape)
    figures = {}
    for variant in VARIANTS:
        env = os.environ | {"TF_CPP_MIN_LOG_LEVEL": "3"}
        env.pop("AUGFLOW_DECODED_BYTES", None)
        if variant == "mapped":
            env["AUGFLOW_DECODED_BYTES"] = "1"
        command = [sys.executable, __file__, "--variant", variant, "--set", str(set_csv), "--steps", str(steps)]
        result = subprocess.run(command, env=env, cwd=scratch, check=True, capture_output=True, text=True)
        figures[variant] = json.loads(result.stdout.strip().splitlines()[-1])
        print(setting, variant, figures[variant], flush=True)
    for variant in ("memory", "mapped"):
        figures[variant]["vs_floor"] = round(figures[variant]["images_per_s"] / figures["floor"]["images_per_s"], 3)
    return {"images": sources * copies, "shape": list(shape)} | figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=60, help="batches of 32 an epoch")
    parser.add_argument("--settings", nargs="+", choices=list(SETTINGS), default=list(SETTINGS))
    parser.add_argument("--variant", choices=VARIANTS, help=argparse.SUPPRESS)  # one variant, in this process
    parser.add_argument("--set", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.variant:
        print(json.dumps(run_variant(args.set, args.variant, args.steps)))
        return
    result = {"machine": machine(), "steps_per_epoch": args.steps, "batch_size": BATCH, "settings": {}}
    with tempfile.TemporaryDirectory(prefix="augflow-store-") as scratch:
        for setting in args.settings:
            result["settings"][setting] = measure(setting, args.steps, Path(scratch))
    result["machine"]["load_average_after"] = machine()["load_average"]
    write_text_atomic(RESULTS_DIR / "store.json", json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
