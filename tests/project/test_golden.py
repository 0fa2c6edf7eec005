"""Golden numbers: a tiny training run whose weights and validation loss are committed here.

The run goes through a fresh process with augflow's own numeric settings (tasks/common/numerics.py: two threads
per op, oneDNN's kernels on and capped at AVX2), as a stage runs for a user. Any machine, TensorFlow
update or code change that trains other numbers fails here first. Produced on a 2-core AMD EPYC with
AVX-512 (avx512f, avx512_vnni, avx512_bf16), where TensorFlow's own default would switch oneDNN on; a
machine with AVX2 and no AVX-512, where its default is off, gave the same numbers once augflow chose the
kernel path (docs/guarantees.md).
"""

import concurrent.futures
import os
import subprocess
import sys

import pytest

from benchmarks.numerics import train_once
from tasks.orchestration.cluster import NUMERIC_VARIABLES
from tests.helpers import ENV, PROJECT, run_stage_in, set_params

GOLDEN = {
    "weights_sha256": "d8dfaed2f480c57428c6cdf79f3da7cd24c0d82b9dd8e5c466a40de38937c2af",
    "val_accuracy": 0.734375,
    "val_loss": 0.5371465682983398,
}
TINY = {
    "ingest": {"classes": ["pullover", "coat"], "train_per_class": 32, "val_per_class": 32, "test_per_class": 1},
    "train": {
        "arms": ["original", "augmented"],
        "seeds": [0],
        "epochs": 3,
        "batch_size": 8,
        "model": {"name": "cnn", "learning_rate": 0.003},
    },
}
# augflow's settings as a user's stage gets them: none of the numeric variables set from outside.
PRODUCT_ENV = {name: value for name, value in ENV.items() if name not in NUMERIC_VARIABLES} | {
    "PYTHONPATH": str(PROJECT)
}
SETTINGS = {
    "augflow": {},
    "one thread per op (the suite's)": {"TF_NUM_INTRAOP_THREADS": "1"},
    # What TensorFlow picks by itself on a CPU without AVX-512's neural-network instructions.
    "oneDNN off (TensorFlow's default on AVX2-only CPUs)": {"TF_ENABLE_ONEDNN_OPTS": "0"},
}


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> dict[str, dict]:
    """The tiny run under each setting, in fresh processes, two at a time."""
    folder = tmp_path_factory.mktemp("golden")
    (folder / "params.yaml").write_text("{}\n")
    set_params(folder, **TINY)
    assert run_stage_in(folder).returncode == 0
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        futures = {
            name: pool.submit(train_once, "original", 0, env, PRODUCT_ENV, folder) for name, env in SETTINGS.items()
        }
        return {name: future.result() for name, future in futures.items()}


def test_a_tiny_run_at_augflows_settings_trains_the_committed_numbers(trained):
    result = trained["augflow"]
    assert {key: result[key] for key in GOLDEN} == GOLDEN


def test_one_thread_per_op_trains_the_same_weights_so_the_suites_comparisons_hold_for_users(trained):
    assert trained["one thread per op (the suite's)"]["weights_sha256"] == trained["augflow"]["weights_sha256"]


def test_the_golden_numbers_would_catch_a_kernel_path_left_to_the_cpu(trained):
    """On an AVX2-only CPU TensorFlow's default is oneDNN off: these weights, not the golden ones."""
    assert trained["oneDNN off (TensorFlow's default on AVX2-only CPUs)"]["weights_sha256"] != GOLDEN["weights_sha256"]


def test_a_stage_process_fixes_the_kernel_path_itself():
    """Nothing set from outside: the stage's own process chooses oneDNN on, capped at AVX2, two threads per op."""
    check = (
        "import os, tasks; "
        "print(*(os.environ[n] for n in ('TF_ENABLE_ONEDNN_OPTS', 'ONEDNN_MAX_CPU_ISA', 'TF_NUM_INTRAOP_THREADS')))"
    )
    result = subprocess.run([sys.executable, "-c", check], cwd=PROJECT, env=PRODUCT_ENV, capture_output=True, text=True)
    assert result.stdout.split() == ["1", "AVX2", "2"], result.stderr
    assert os.environ.get("TF_NUM_INTRAOP_THREADS") == "1"  # the suite's own, set in conftest.py
