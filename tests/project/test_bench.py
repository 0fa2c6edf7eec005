"""`make bench` (benchmarks/bench.py) for real, on its quickest benchmark, in a copy of the project.

The runner hands a benchmark its quick-mode arguments, sends its JSON to the copy's
benchmarks/results/quick/ (never over the full runs' files the docs quote, nor into the project
the suite runs from) and tabulates the figures read back from that file.
"""

import hashlib
import json
import shutil
import sys

from benchmarks.bench import BENCHMARKS
from tests.helpers import PROJECT, make_project, run


def digests(folder) -> dict[str, str]:
    return {
        str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in folder.rglob("*")
        if path.is_file()
    }


def test_make_bench_writes_a_benchmarks_json_in_quick_mode_and_tabulates_the_figures_it_holds(tmp_path):
    project_results = digests(PROJECT / "benchmarks/results")
    copy = make_project(tmp_path)
    shutil.rmtree(copy / "benchmarks/results")  # the committed figures: whatever is there next, the run wrote
    shown = run(copy, sys.executable, "benchmarks/bench.py", "--only", "sequential").stdout
    written = copy / "benchmarks/results"
    assert sorted(str(path.relative_to(written)) for path in written.rglob("*")) == ["quick", "quick/sequential.json"]
    result = json.loads((written / "quick/sequential.json").read_text())
    assert result["experiments"] == 20000  # bench.py's quick-mode argument, not the benchmark's own default
    assert result["machine"]["cpus"] and result["seconds"] > 0
    # The figures the table promises: the rule's error rate held to its alpha, the naive re-test's far above it.
    assert result["false_difference_under_no_effect"] <= result["false_difference_upper_99"] < 0.06
    assert result["naive_every_seed_false_difference"] > 2 * result["design"]["alpha"]
    figures = BENCHMARKS["sequential"][4](result)
    assert len(figures) == 3 and all(f"| {figure} | {value} |" in shown for figure, value in figures), shown
    assert "make bench (quick mode)" in shown and "FAILED" not in shown
    assert digests(PROJECT / "benchmarks/results") == project_results
