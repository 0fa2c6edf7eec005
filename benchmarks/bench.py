"""`make bench`: every benchmark, one after another, then one table of their headline figures and the machine.

Run from the project root after `make setup`:

    .venv/bin/python benchmarks/bench.py [--full]

Each benchmark runs as its own process and writes benchmarks/results/<name>.json;
this script then reads those files back into one table. The long ones run in a
quick mode unless --full is given, so that `make bench` takes about a quarter of an
hour on a 2-core machine: stage times and the parallel benchmark run in a scratch
copy of the project on its params.yaml with one seed and two epochs (QUICK_PARAMS).
A benchmark that fails is reported in the table and the others still run. Speed
is never asserted: on a shared machine the figures move, which is why each row
carries the 1-minute load average before and after it.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.machine import RESULTS_DIR, machine  # noqa: E402
from tasks.cluster import rebuild_workspace, workspace_snapshot  # noqa: E402

QUICK_PARAMS = {"train": {"seeds": [0], "epochs": 2}}  # the default pipeline's shape, less training


def figures_augment(result: dict) -> list[tuple[str, str]]:
    ratios, stage = result["ratios"], result["stage_images_per_s_all_cores"]
    return [
        ("transform vs ImageDataGenerator, one thread", f"{ratios['vs_image_data_generator']:.1f}×"),
        ("transform vs albumentations, one thread", f"{ratios['vs_albumentations']:.1f}×"),
        ("stage in-process vs its I/O floor", f"{ratios['stage_vs_floor']:.2f} ({stage['stage']:.0f} images/s)"),
    ]


def figures_augment_stage(result: dict) -> list[tuple[str, str]]:
    return [(
        f"`dvc repro` of augment, {result['setup']['training_images']} images × {result['setup']['copies']} copies, vs the article's loop",
        f"{result['ratio']:.1f}× ({result['median_stage_images_per_s']} vs {result['median_article_loop_images_per_s']} images/s)",
    )]


def figures_ingest(result: dict) -> list[tuple[str, str]]:
    median = result["median_seconds"]
    return [
        (f"full ingest of {result['images']} photos", f"{median['full']['wall']:.1f} s"),
        ("folder grown by 1%, CPU vs full", f"{100 * result['median_ratios']['grown_1_percent_over_full_cpu']:.1f}%"),
    ]


def figures_stage_times(result: dict) -> list[tuple[str, str]]:
    return [(f"stage {stage}", f"{seconds:.1f} s") for stage, seconds in result["seconds"].items()]


def figures_parallel(result: dict) -> list[tuple[str, str]]:
    seconds, ratios = result["seconds"], result["ratios"]
    same = all(result["identical_to_serial"].values())
    return [
        (f"{len(result['stages'])} training stages serially", f"{seconds['serial']:.1f} s"),
        ("JOBS=2 vs serially", f"{ratios['jobs_2/serial']:.2f}×"),
        ("local Dask vs JOBS=2", f"{ratios['dask/jobs_2']:.2f}×"),
        ("every dvc.lock hash equal", "yes" if same else "NO"),
    ]


# name: (command after the interpreter, quick-mode arguments, where it runs (None: the project), its figures)
BENCHMARKS: dict[str, tuple[list[str], list[str], str | None, Callable[[dict], list]]] = {
    "augment": (["benchmarks/augment.py"], [], None, figures_augment),
    "augment_stage": (["benchmarks/augment_stage.py"], ["--rounds", "2", "--loop-copies", "4"], None, figures_augment_stage),
    "ingest_incremental": (["benchmarks/ingest_incremental.py"], ["--images", "1000"], None, figures_ingest),
    "stage_times": (["benchmarks/stage_times.py"], [], "quick", figures_stage_times),
    "parallel": (["benchmarks/parallel.py"], [], "quick", figures_parallel),
}


def quick_project(folder: Path) -> Path:
    """A git + DVC copy of the project in folder, on its params.yaml with QUICK_PARAMS merged in."""
    rebuild_workspace(workspace_snapshot(ROOT), folder)
    params = yaml.safe_load((folder / "params.yaml").read_text())
    for group, values in QUICK_PARAMS.items():
        params[group] |= values
    (folder / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    return folder


def run_benchmark(name: str, full: bool, scratch: Path) -> dict:
    """Run one benchmark in its own process; its wall time, load averages and whether it succeeded."""
    command, quick, where, _ = BENCHMARKS[name]
    cwd = ROOT if full or where is None else quick_project(scratch / name)
    arguments = [sys.executable, *(str(ROOT / part) for part in command), *([] if full else quick)]
    env = os.environ | {"PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    print(f"== {name}: {' '.join(arguments[1:])}{'' if cwd == ROOT else f' (in a scratch copy, {QUICK_PARAMS})'}", flush=True)
    load, start = os.getloadavg()[0], time.perf_counter()
    status = subprocess.run(arguments, cwd=cwd, env=env).returncode
    return {"seconds": round(time.perf_counter() - start), "load": (round(load, 1), round(os.getloadavg()[0], 1)), "ok": status == 0}


def table(runs: dict[str, dict]) -> str:
    lines = ["| benchmark | figure | value | benchmark's wall time | load before → after |", "|---|---|---|---|---|"]
    for name, run in runs.items():
        took, load = f"{run['seconds']} s", f"{run['load'][0]} → {run['load'][1]}"
        if not run["ok"]:
            lines.append(f"| {name} | FAILED (see its output above) | | {took} | {load} |")
            continue
        figures = BENCHMARKS[name][3](json.loads((RESULTS_DIR / f"{name}.json").read_text()))
        for number, (figure, value) in enumerate(figures):
            lines.append(f"| {name if number == 0 else ''} | {figure} | {value} | {took if number == 0 else ''} | {load if number == 0 else ''} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="run the long benchmarks on the project's own params.yaml")
    parser.add_argument("--only", nargs="+", choices=list(BENCHMARKS), help="run only these (the table shows them alone)")
    args = parser.parse_args()
    start, scratch = time.perf_counter(), Path(tempfile.mkdtemp(prefix="augflow-bench-"))
    try:
        runs = {name: run_benchmark(name, args.full, scratch) for name in args.only or BENCHMARKS}
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    about = machine()
    print(f"\nmake bench{' (--full)' if args.full else ' (quick mode)'}: {about['cpus']} × {about['cpu']}, Python {about['python']}, "
          f"{time.perf_counter() - start:.0f} s in all, load average now {about['load_average']}\n")  # fmt: skip
    print(table(runs))
    if not all(run["ok"] for run in runs.values()):
        sys.exit(1)


if __name__ == "__main__":
    main()
