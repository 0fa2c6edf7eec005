"""Training run times, kept outside DVC's outputs: .augflow/times/<arm>-seed-<seed>.json.

A run's time differs from one run to the next and its outputs must not, or DVC's
hashes would change with the machine's load. The time is kept with the hash of
the model the run made, so a model DVC restored from its cache (no command ran)
is never credited with the time of another run. Each record also holds the run's work in
pixels shown to the model, so the next experiment's training time can be estimated before it starts.
"""

import hashlib
import json
from pathlib import Path

from tasks.common.files import write_text_atomic
from tasks.common.paths import TIMES_DIR


def time_file(model_path: Path, times_dir: Path) -> Path:
    return times_dir / f"{model_path.parent.name}-{model_path.stem}.json"


def model_hash(model_path: Path) -> str:
    return hashlib.sha256(model_path.read_bytes()).hexdigest()


def record_seconds(
    model_path: Path, seconds: float, times_dir: Path = TIMES_DIR, pixels_shown: int | None = None
) -> None:
    record = {"seconds": round(seconds, 1), "model_sha256": model_hash(model_path)}
    record |= {"pixels_shown": pixels_shown} if pixels_shown else {}
    write_text_atomic(time_file(model_path, times_dir), json.dumps(record) + "\n")


def measured_speed(times_dir: Path = TIMES_DIR) -> tuple[float, int] | None:
    """(pixels shown per second, runs measured) over this machine's recorded training runs, or None before the first."""
    records = [json.loads(path.read_text()) for path in sorted(times_dir.glob("*.json"))] if times_dir.is_dir() else []
    measured = [record for record in records if record.get("pixels_shown") and record["seconds"] > 0]
    if not measured:
        return None
    return sum(record["pixels_shown"] for record in measured) / sum(record["seconds"] for record in measured), len(
        measured
    )


def training_estimate(pixels_shown: int, runs: int, times_dir: Path = TIMES_DIR) -> str:
    """A sentence on what `runs` training runs showing `pixels_shown` pixels in all will take on this machine."""
    speed = measured_speed(times_dir)
    if speed is None:
        return f"{runs} training runs; no training run has been timed on this machine yet, so no estimate of their time"
    per_second, measured = speed
    minutes = pixels_shown / per_second / 60
    timed = "1 run" if measured == 1 else f"{measured} runs"
    return (
        f"{runs} training runs: about {minutes:.0f} min of training one at a time, "
        f"at the speed of the {timed} timed here"
    )


def measured_seconds(model_path: Path, times_dir: Path = TIMES_DIR) -> float | None:
    """How long the run that made this model took, or None if no run on this machine made it
    (restored from DVC's cache, or trained before times were kept)."""
    try:
        record = json.loads(time_file(model_path, times_dir).read_text())
    except FileNotFoundError:
        return None
    return record["seconds"] if model_path.is_file() and model_hash(model_path) == record["model_sha256"] else None
