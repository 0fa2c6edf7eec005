"""The machine a benchmark ran on, recorded beside its figures so they can be compared honestly."""

import os
import platform
from pathlib import Path


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor()


def machine() -> dict:
    return {"cpus": os.cpu_count(), "cpu": cpu_model(), "python": platform.python_version()}
