"""What the machine lends a run: its share of memory for decoded images, from the memory and the runs at once.

A setting of the machine, never of the experiment: a run's batches, and so its model, are the same whatever
it is (tasks/common/data.py holds a set in memory or maps it from disk, with the same values and order).
"""

import os
from pathlib import Path

JOBS_VARIABLE = "AUGFLOW_JOBS"  # runs at once on this machine: set by `make run JOBS=N` for every stage it runs
BUDGET_VARIABLE = "AUGFLOW_DECODED_BYTES"  # sets a run's budget for decoded pixels outright
CGROUP_LIMITS = (Path("/sys/fs/cgroup/memory.max"), Path("/sys/fs/cgroup/memory/memory.limit_in_bytes"))


def machine_memory() -> int:
    """Bytes of memory this process's machine has, or its control group's limit if lower (a container's)."""
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    for limit in CGROUP_LIMITS:
        if limit.is_file() and limit.read_text().strip().isdigit():
            total = min(total, int(limit.read_text()))
    return total


def memory_budget() -> int:
    """Bytes of decoded pixels a run may hold in memory: half the machine's memory shared among the runs at once
    ($AUGFLOW_JOBS, else one per usable core, as `make run` runs by default). The other half is left to TensorFlow,
    the models and everything else; $AUGFLOW_DECODED_BYTES sets the budget outright."""
    if os.environ.get(BUDGET_VARIABLE):
        return int(os.environ[BUDGET_VARIABLE])
    jobs = int(os.environ.get(JOBS_VARIABLE) or len(os.sched_getaffinity(0)))
    return machine_memory() // (2 * max(jobs, 1))
