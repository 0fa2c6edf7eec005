"""A run's share of the machine's memory for decoded images: half the memory (or a container's limit), divided
among the runs at once."""

import os

from tasks.common import machine
from tasks.common.machine import BUDGET_VARIABLE, JOBS_VARIABLE, machine_memory, memory_budget


def test_a_runs_share_is_half_the_memory_divided_among_the_runs_at_once(monkeypatch):
    monkeypatch.delenv(BUDGET_VARIABLE, raising=False)
    shares = {}
    for jobs in ("1", "4"):
        monkeypatch.setenv(JOBS_VARIABLE, jobs)
        shares[jobs] = memory_budget()
    assert shares == {"1": machine_memory() // 2, "4": machine_memory() // 8}
    monkeypatch.delenv(JOBS_VARIABLE)  # a stage run by itself: one run per usable core, make run's default
    assert memory_budget() == machine_memory() // (2 * len(os.sched_getaffinity(0)))
    monkeypatch.setenv(BUDGET_VARIABLE, "123")
    assert memory_budget() == 123


def test_a_containers_memory_limit_counts_when_it_is_lower(tmp_path, monkeypatch):
    limit = tmp_path / "memory.max"
    monkeypatch.setattr(machine, "CGROUP_LIMITS", (limit,))
    limit.write_text("max\n")  # no limit
    whole = machine_memory()
    assert whole == os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    limit.write_text(f"{whole // 3}\n")
    assert machine_memory() == whole // 3
