"""Wall time of every pipeline stage on the current params.yaml, forced to run once each.

Run from the project root after `make setup` (or `make run`):

    .venv/bin/python benchmarks/stage_times.py

Each stage is reproduced alone with `dvc repro --force --single-item`, upstream
first, so the figures are what `make run` spends on a cold pipeline, except for
augment, whose persistent output keeps the copies that are still up to date.
Writes benchmarks/results/stage_times.json and prints a table.
"""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.machine import RESULTS_DIR, machine  # noqa: E402
from tasks.common.files import write_text_atomic  # noqa: E402
from tasks.orchestration.parallel import pipeline_stages  # noqa: E402

RESULTS = RESULTS_DIR / "stage_times.json"


def main() -> None:
    env = os.environ | {"PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    timings = {}
    for stage, _ in pipeline_stages(Path.cwd()):
        start = time.perf_counter()
        subprocess.run(["dvc", "repro", "--force", "--single-item", stage], env=env, check=True, capture_output=True)
        timings[stage] = round(time.perf_counter() - start, 1)
        print(f"{stage:<22} {timings[stage]:>7.1f} s", flush=True)
    total = round(sum(timings.values()), 1)
    print(f"{'total':<22} {total:>7.1f} s")
    result = {
        "machine": machine(),
        "params": Path("params.yaml").read_text(),
        "seconds": timings,
        "total_seconds": total,
    }
    write_text_atomic(RESULTS, json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
