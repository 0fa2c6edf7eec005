"""The machine a benchmark ran on, recorded beside its figures so they can be compared honestly."""

import os
import platform
from pathlib import Path

RESULTS_DIR = Path(__file__).resolve().parent / "results"  # every benchmark's JSON, wherever it runs from


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor()


def machine() -> dict:
    """CPU, cores, Python and the load averages (1, 5, 15 min) when called: the machine is often shared."""
    load = [round(value, 2) for value in os.getloadavg()]
    return {"cpus": os.cpu_count(), "cpu": cpu_model(), "python": platform.python_version(), "load_average": load}
