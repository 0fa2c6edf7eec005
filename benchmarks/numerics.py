"""Does a training run's result depend on TensorFlow's threads or on oneDNN's CPU instructions, and what does each cost?

Run from the project root after `dvc repro augment` on the params to study:

    .venv/bin/python benchmarks/numerics.py --arm augmented --seed 0

Trains the same (arm, seed) once per setting, each in a fresh process, into a
scratch folder (the project's models are not touched), and records the final
validation loss and accuracy to every digit, a hash of the weights and the wall
time. Equal hashes mean equal numbers. Writes benchmarks/results/numerics.json.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.machine import RESULTS_DIR, machine  # noqa: E402
from tasks.common.files import write_text_atomic  # noqa: E402

RESULTS = RESULTS_DIR / "numerics.json"
AUGFLOW = "2 threads, oneDNN up to AVX2 (augflow)"
# The default params' augmented seed-0 run at augflow's settings, on AVX-512 and on AVX2-only machines alike
# (docs/guarantees.md); tests/project/test_golden.py holds a tiny run's numbers, checked by every `make test`.
GOLDEN_AUGMENTED_SEED_0 = "21c69c1b519a30eb8bf32ceccc1f4896e769bbe1b4db269d972f519516ff9bec"
# name: environment over augflow's own (tasks/common/numerics.py); 0 threads lets TensorFlow use every core
SETTINGS = {
    "every core, oneDNN's widest instructions (TensorFlow's defaults)": {
        "TF_NUM_INTRAOP_THREADS": "0",
        "TF_NUM_INTEROP_THREADS": "0",
        "OMP_NUM_THREADS": "0",
        "ONEDNN_MAX_CPU_ISA": "ALL",
    },
    "2 threads, oneDNN's widest instructions": {"ONEDNN_MAX_CPU_ISA": "ALL"},
    AUGFLOW: {},
    "1 thread, oneDNN up to AVX2": {"TF_NUM_INTRAOP_THREADS": "1"},
    "2 threads, oneDNN off (TensorFlow's default on CPUs without AVX-512)": {"TF_ENABLE_ONEDNN_OPTS": "0"},
}
TRAIN_ONE = """
import hashlib, json, sys
from pathlib import Path
import numpy as np
from tasks.common.params import load_params
from tasks.train.stage import train
arm, seed, scratch = sys.argv[1], int(sys.argv[2]), Path(sys.argv[3])
model_path = train(arm, seed, load_params().train, models_dir=scratch / "models", live_dir=scratch / "live")
import keras
weights = keras.saving.load_model(model_path).get_weights()
digest = hashlib.sha256(b"".join(np.ascontiguousarray(w).tobytes() for w in weights)).hexdigest()
curve = json.loads((scratch / "live" / f"{arm}-seed-{seed}" / "metrics.json").read_text())
record = {"weights_sha256": digest, "val_accuracy": curve["eval"]["accuracy"], "val_loss": curve["eval"]["loss"]}
print(json.dumps(record))
"""


def train_once(
    arm: str, seed: int, environment: dict[str, str], base: dict[str, str] | None = None, cwd: Path | None = None
) -> dict:
    """Train (arm, seed) of the project in cwd (params.yaml, data/) in a fresh process whose environment is
    base (default: this one's) updated with environment; its weights' hash, final val numbers and seconds."""
    with tempfile.TemporaryDirectory() as scratch:
        start = time.perf_counter()
        result = subprocess.run(
            [sys.executable, "-c", TRAIN_ONE, arm, str(seed), scratch],
            env=(os.environ if base is None else base) | environment,
            cwd=cwd,
            capture_output=True,
            text=True,
        )
        seconds = time.perf_counter() - start
    if result.returncode:
        raise RuntimeError(f"training {arm} seed {seed} failed ({result.returncode}):\n{result.stderr}")
    return json.loads(result.stdout.strip().splitlines()[-1]) | {"seconds": round(seconds, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arm", default="augmented")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    results = {}
    for name, environment in SETTINGS.items():
        results[name] = train_once(args.arm, args.seed, environment)
        print(
            f"{name:<66} {results[name]['seconds']:>6.1f} s  val accuracy {results[name]['val_accuracy']:.6f}  "
            f"weights {results[name]['weights_sha256'][:12]}",
            flush=True,
        )
    reference = results[AUGFLOW]
    if (args.arm, args.seed) == ("augmented", 0):
        matches = reference["weights_sha256"] == GOLDEN_AUGMENTED_SEED_0
        print(
            f"augflow's setting {'matches' if matches else 'DIFFERS FROM'} the golden weights "
            f"{GOLDEN_AUGMENTED_SEED_0[:12]} (on the default params)"
        )
    for result in results.values():
        result["same_weights_as_augflow"] = result["weights_sha256"] == reference["weights_sha256"]
        result["time_vs_augflow"] = round(result["seconds"] / reference["seconds"], 2)
    write_text_atomic(
        RESULTS,
        json.dumps({"machine": machine(), "arm": args.arm, "seed": args.seed, "settings": results}, indent=2) + "\n",
    )


if __name__ == "__main__":
    main()
