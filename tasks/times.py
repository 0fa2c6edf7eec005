"""Training run times, kept outside DVC's outputs: .augflow/times/<arm>-seed-<seed>.json.

A run's time differs from one run to the next and its outputs must not, or DVC's
hashes would change with the machine's load. The time is kept with the hash of
the model the run made, so a model DVC restored from its cache (no command ran)
is never credited with the time of another run.
"""

import hashlib
import json
from pathlib import Path

from tasks.files import write_text_atomic

TIMES_DIR = Path(".augflow/times")


def time_file(model_path: Path, times_dir: Path) -> Path:
    return times_dir / f"{model_path.parent.name}-{model_path.stem}.json"


def model_hash(model_path: Path) -> str:
    return hashlib.sha256(model_path.read_bytes()).hexdigest()


def record_seconds(model_path: Path, seconds: float, times_dir: Path = TIMES_DIR) -> None:
    record = {"seconds": round(seconds, 1), "model_sha256": model_hash(model_path)}
    write_text_atomic(time_file(model_path, times_dir), json.dumps(record) + "\n")


def measured_seconds(model_path: Path, times_dir: Path = TIMES_DIR) -> float | None:
    """How long the run that made this model took, or None if no run on this machine made it
    (restored from DVC's cache, or trained before times were kept)."""
    try:
        record = json.loads(time_file(model_path, times_dir).read_text())
    except FileNotFoundError:
        return None
    return record["seconds"] if model_path.is_file() and model_hash(model_path) == record["model_sha256"] else None
