"""What ingesting a grown image folder costs next to a full ingest: the cache's claim, measured.

Run from the project root after `make setup`:

    .venv/bin/python benchmarks/ingest_incremental.py [--images 2000] [--cycles 3]

Builds a folder of JPEG photographs-to-be (4 classes, 500x375, drawn by
tests/pictures.py) in a temporary folder, then, per cycle and with a fresh
cache: a full ingest, an ingest of the unchanged folder, and one after adding
1% more files. Each is the stage's own `ingest()` writing all its outputs, as
`dvc repro` runs it after deleting them. Records wall and CPU seconds; writes
benchmarks/results/ingest_incremental.json with the medians of the per-cycle
ratios to the full ingest, and prints them.
"""

import argparse
import contextlib
import io
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.machine import RESULTS_DIR, machine  # noqa: E402
from tasks.common.files import write_text_atomic  # noqa: E402
from tasks.common.params import IngestParams  # noqa: E402
from tasks.ingest.stage import ingest  # noqa: E402
from tests.pictures import class_folders  # noqa: E402

RESULTS = RESULTS_DIR / "ingest_incremental.json"
CLASSES = {"cats": "ellipse", "dogs": "rectangle", "owls": "ellipse", "boxes": "rectangle"}
PHOTO_SIZE = (500, 375)  # the size of a typical photo in Kaggle's dogs-vs-cats set


def timed_ingest(params: IngestParams, work: Path, cache: Path) -> dict[str, float]:
    """Wall and CPU seconds of one ingest into fresh output folders, its summary line silenced.

    CPU seconds (this process's) are the steadier figure on a machine other work shares.
    """
    out = Path(tempfile.mkdtemp(dir=work))
    wall, cpu = time.perf_counter(), time.process_time()
    with contextlib.redirect_stdout(io.StringIO()):
        ingest(params, out / "raw", out / "sets", out / "report.json", cache)
    return {"wall": time.perf_counter() - wall, "cpu": time.process_time() - cpu}


def one_cycle(params: IngestParams, work: Path, cycle: int, added_per_class: int) -> dict[str, dict[str, float]]:
    """A full ingest on a fresh cache, the same folder again, then the folder grown by 1%."""
    cache, source = work / f"cache-{cycle}", Path(params.source)
    runs = {"full": timed_ingest(params, work, cache), "unchanged": timed_ingest(params, work, cache)}
    added = class_folders(
        work / f"new-{cycle}", CLASSES, added_per_class, first_seed=10**6 * (cycle + 1), size=PHOTO_SIZE
    )
    for path in added.rglob("*.jpg"):
        path.rename(source / path.relative_to(added).parent / f"new-{cycle}-{path.name}")
    runs["grown_1_percent"] = timed_ingest(params, work, cache)
    for path in source.rglob(f"new-{cycle}-*"):
        path.unlink()
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--cycles", type=int, default=3)
    args = parser.parse_args()
    per_class, added_per_class = args.images // len(CLASSES), max(1, args.images // 100 // len(CLASSES))
    load_before = os.getloadavg()  # the machine is shared: other work skews wall times
    cycles = []
    with tempfile.TemporaryDirectory(prefix="augflow-bench-") as folder:
        work = Path(folder)
        params = IngestParams(
            source=str(class_folders(work / "photos", CLASSES, per_class, size=PHOTO_SIZE)), image_size=(64, 64)
        )
        for cycle in range(args.cycles):
            cycles.append(one_cycle(params, work, cycle, added_per_class))
            print(
                f"cycle {cycle + 1}: "
                + ", ".join(f"{run} {t['wall']:.2f} s ({t['cpu']:.2f} s CPU)" for run, t in cycles[-1].items()),
                flush=True,
            )
    ratios = {
        f"{run}_over_full_{clock}": round(statistics.median(c[run][clock] / c["full"][clock] for c in cycles), 4)
        for run in ("grown_1_percent", "unchanged")
        for clock in ("cpu", "wall")
    }
    result = {
        "machine": machine(),
        "load_average_1min": {"before": round(load_before[0], 2), "after": round(os.getloadavg()[0], 2)},
        "images": per_class * len(CLASSES),
        "added": added_per_class * len(CLASSES),
        "photos": f"{PHOTO_SIZE[0]}x{PHOTO_SIZE[1]} JPEG, {len(CLASSES)} classes",
        "image_size": list(params.image_size),
        "seconds": [
            {run: {clock: round(t, 3) for clock, t in times.items()} for run, times in c.items()} for c in cycles
        ],
        "median_seconds": {
            run: {clock: round(statistics.median(c[run][clock] for c in cycles), 3) for clock in ("cpu", "wall")}
            for run in cycles[0]
        },
        "median_ratios": ratios,
    }
    write_text_atomic(RESULTS, json.dumps(result, indent=2) + "\n")
    print(json.dumps({key: result[key] for key in ("median_seconds", "median_ratios")}))


if __name__ == "__main__":
    main()
