"""The machine a benchmark ran on, recorded beside its figures so they can be compared honestly."""

import os
import platform
from pathlib import Path

# Every benchmark's JSON, wherever it runs from; `make bench`'s quick mode sets results/quick, so that
# its figures never replace the full runs' that the docs quote.
RESULTS_DIR = Path(os.environ.get("AUGFLOW_BENCH_RESULTS", Path(__file__).resolve().parent / "results"))


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor()


def peak_gflops_per_core() -> float:
    """Single-precision peak of one core: clock x FLOPs a cycle (two FMA units x lanes x 2).

    8 lanes with AVX2 (augflow caps oneDNN at AVX2, tasks/common/numerics.py), 4 with SSE alone; Zen 4
    runs AVX-512 at the AVX2 rate anyway. The clock is /proc/cpuinfo's (nominal: turbo not counted).
    """
    info = Path("/proc/cpuinfo").read_text()
    megahertz = float(next(line.split(":")[1] for line in info.splitlines() if line.startswith("cpu MHz")))
    lanes = 8 if " avx2" in info and " fma" in info else 4
    return round(megahertz / 1000 * 2 * lanes * 2, 1)


def machine() -> dict:
    """CPU, cores, Python and the load averages (1, 5, 15 min) when called: the machine is often shared."""
    load = [round(value, 2) for value in os.getloadavg()]
    return {"cpus": os.cpu_count(), "cpu": cpu_model(), "python": platform.python_version(), "load_average": load}
