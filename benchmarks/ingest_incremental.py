"""What ingesting a grown image folder costs next to a full ingest: the cache's claim, measured.

Run from the project root after `make setup`:

    .venv/bin/python benchmarks/ingest_incremental.py [--images 2000] [--cycles 3]

Builds a folder of JPEG photographs-to-be (4 classes, 500x375, drawn by
tests/pictures.py) in a temporary folder, then, per cycle and with a fresh
cache: a full ingest, an ingest of the unchanged folder, and one after adding
1% more files. Each is the stage's own `ingest()` writing all its outputs, as
`dvc repro` runs it after deleting them. Writes
benchmarks/results/ingest_incremental.json and prints the medians.
"""

import argparse
import contextlib
import io
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from benchmarks.machine import machine  # noqa: E402
from pictures import class_folders  # noqa: E402
from tasks.files import write_text_atomic  # noqa: E402
from tasks.ingest import ingest  # noqa: E402
from tasks.params import IngestParams  # noqa: E402

RESULTS = Path("benchmarks/results/ingest_incremental.json")
CLASSES = {"cats": "ellipse", "dogs": "rectangle", "owls": "ellipse", "boxes": "rectangle"}
PHOTO_SIZE = (500, 375)  # the size of a typical photo in Kaggle's dogs-vs-cats set


def timed_ingest(params: IngestParams, work: Path, cache: Path) -> float:
    """Seconds for one ingest into fresh output folders, its summary line silenced."""
    out = Path(tempfile.mkdtemp(dir=work))
    start = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        ingest(params, out / "raw", out / "sets", out / "report.json", cache)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--cycles", type=int, default=3)
    args = parser.parse_args()
    per_class, added_per_class = args.images // len(CLASSES), max(1, args.images // 100 // len(CLASSES))
    seconds: dict[str, list[float]] = {"full": [], "unchanged": [], "grown_1_percent": []}
    with tempfile.TemporaryDirectory(prefix="augflow-bench-") as folder:
        work = Path(folder)
        source = class_folders(work / "photos", CLASSES, per_class, size=PHOTO_SIZE)
        params = IngestParams(source=str(source))
        for cycle in range(args.cycles):
            cache = work / f"cache-{cycle}"
            seconds["full"].append(timed_ingest(params, work, cache))
            seconds["unchanged"].append(timed_ingest(params, work, cache))
            added = class_folders(work / f"new-{cycle}", CLASSES, added_per_class, first_seed=10**6 * (cycle + 1), size=PHOTO_SIZE)
            for path in added.rglob("*.jpg"):
                path.rename(source / path.relative_to(added).parent / f"new-{cycle}-{path.name}")
            seconds["grown_1_percent"].append(timed_ingest(params, work, cache))
            for path in source.rglob(f"new-{cycle}-*"):
                path.unlink()
            print(f"cycle {cycle + 1}: " + ", ".join(f"{name} {times[-1]:.2f} s" for name, times in seconds.items()), flush=True)
    median = {name: round(statistics.median(times), 3) for name, times in seconds.items()}
    result = {
        "machine": machine(),
        "images": per_class * len(CLASSES), "added": added_per_class * len(CLASSES),
        "photos": f"{PHOTO_SIZE[0]}x{PHOTO_SIZE[1]} JPEG, {len(CLASSES)} classes",
        "image_size": list(params.image_size), "cycles": args.cycles,
        "seconds": {name: [round(t, 3) for t in times] for name, times in seconds.items()},
        "median_seconds": median,
        "grown_over_full": round(median["grown_1_percent"] / median["full"], 4),
        "unchanged_over_full": round(median["unchanged"] / median["full"], 4),
    }  # fmt: skip
    write_text_atomic(RESULTS, json.dumps(result, indent=2) + "\n")
    print(json.dumps({key: result[key] for key in ("median_seconds", "grown_over_full", "unchanged_over_full")}))


if __name__ == "__main__":
    main()
