"""`make bench`: every benchmark, one after another, then one table of their headline figures and the machine.

Run from the project root after `make setup`:

    .venv/bin/python benchmarks/bench.py [--full]

Each benchmark runs as its own process and writes benchmarks/results/<name>.json
(benchmarks/results/quick/<name>.json in quick mode); this script then reads those
files back into one table. The long ones run in a
quick mode unless --full is given, to keep `make bench` near a quarter of an hour on
a quiet 2-core machine (docs/performance.md has what a pass took): stage times and the parallel benchmark run in a
scratch copy of the project on its params.yaml with one seed and two epochs
(QUICK_PARAMS), training on 3 epochs, the article's loop on 4 copies an image, fewer
rounds. The no-op and training benchmarks share a scratch copy on params.yaml with
train.epochs 1, reproduced first: the default pipeline's stages and files. The
cost-growth benchmark builds scratch projects of its own from two git refs (old code
and new); quick mode runs it at 250 training images per class, without push and pull.
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

from benchmarks.cost_growth import short  # noqa: E402
from benchmarks.machine import RESULTS_DIR, machine  # noqa: E402
from tasks.orchestration.cluster import rebuild_workspace, workspace_snapshot  # noqa: E402

QUICK_PARAMS = {"train": {"seeds": [0], "epochs": 2}}  # the default pipeline's shape, less training


def figures_augment(result: dict) -> list[tuple[str, str]]:
    ratios, stage = result["ratios"], result["stage_images_per_s_all_cores"]
    return [
        ("transform vs ImageDataGenerator, one thread", f"{ratios['vs_image_data_generator']:.1f}×"),
        ("transform vs albumentations, one thread", f"{ratios['vs_albumentations']:.1f}×"),
        ("stage in-process vs its I/O floor", f"{ratios['stage_vs_floor']:.2f} ({stage['stage']:.0f} images/s)"),
    ]


def figures_augment_stage(result: dict) -> list[tuple[str, str]]:
    loop = result["median_article_loop_images_per_s"]
    return [
        (
            f"`dvc repro` of augment ({result['copies_made']} copies, {name}) vs the article's loop",
            f"{result['ratio'][name]:.1f}× ({rate} vs {loop} images/s)",
        )
        for name, rate in result["median_stage_images_per_s"].items()
    ]


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
    reference = result["engines"][0]
    same = all(result[f"identical_to_{reference}"].values())
    named = {
        "jobs_2/serial": "JOBS=2 vs serially",
        "dask/jobs_2": "local Dask, cold, vs JOBS=2",
        "dask_warm/jobs_2": "local Dask, warm, vs JOBS=2",
    }
    return [
        (f"{len(result['stages'])} training stages, {reference}", f"{seconds[reference]:.1f} s"),
        *((label, f"{ratios[key]:.2f}×") for key, label in named.items() if key in ratios),
        ("every dvc.lock hash equal", "yes" if same else "NO"),
    ]


def figures_noop(result: dict) -> list[tuple[str, str]]:
    median, cpu = result["median_seconds"], result["median_cpu_seconds"]
    return [
        *((f"no-op {name}", f"{seconds:.2f} s ({cpu[name]:.2f} s CPU)") for name, seconds in median.items()),
        ("Prefect server start (first, fresh database)", f"{result['prefect_server_start_seconds']:.1f} s"),
        (
            "no-op make flow, its temporary server included",
            f"{result['make_flow_with_its_temporary_server_seconds']:.1f} s",
        ),
    ]


def figures_training(result: dict) -> list[tuple[str, str]]:
    rows = [
        (
            "MFLOP per training image; peak GFLOP/s a core",
            f"{result['flops_per_training_image'] / 1e6:.1f}; {result['peak_gflops_per_core']:.0f}",
        )
    ]
    for name, figures in result["variants"].items():
        ratios = ", ".join(
            f"{key.removeprefix('vs_').replace('_', ' ')} {figures[key]:.2f}"
            for key in ("vs_baseline_seconds", "vs_floor_throughput")
            if key in figures
        )
        same = "same model" if figures["same_model_as_baseline"] else "another model"
        rows.append(
            (
                f"{name}: run s, steady images/s, GFLOP/s",
                f"{figures['train_seconds']:.0f}, {figures['steady_images_per_s']}, "
                f"{figures['gflops_per_s']:.1f} ({ratios}; {same})",
            )
        )
    return rows + [(f"{name}: failed", reason) for name, reason in result.get("failed", {}).items()]


def figures_sequential(result: dict) -> list[tuple[str, str]]:
    seeds = ", ".join(f"{effect} {figures['mean_seeds']:.1f}" for effect, figures in result["default"].items())
    return [
        (
            "make decide's rule: false improves/hurts under no effect",
            f"{result['false_difference_under_no_effect']:.4f} (α 0.05)",
        ),
        ("naive re-test after every added seed, same", f"{result['naive_every_seed_false_difference']:.4f}"),
        ("mean seeds used, by true difference", seeds),
    ]


def figures_cost_growth(result: dict) -> list[tuple[str, str]]:
    sizes = sorted(result["sizes"], key=int)
    rows = []
    for step, unit, key in (
        ("ingest", "ms per training image", "ms_per_training_image"),
        ("augment", "ms per training image", "ms_per_training_image"),
        ("epoch", "ms per training image", "ms_per_training_image"),
        ("no-op repro", "s", "seconds"),
        ("push", "ms per training image", "ms_per_training_image"),
        ("pull", "ms per training image", "ms_per_training_image"),
    ):
        cells = [
            f"{short(figures['old'][key][step])} → {short(figures['new'][key][step])}"
            f" ({figures['new_over_old'][step]:.2f}×)"
            for figures in (result["sizes"][size] for size in sizes)
            if step in figures["new_over_old"]
        ]
        if cells:
            rows.append((f"{step}, {unit}, old → new, at {', '.join(sizes)} per class", "; ".join(cells)))
    for name, ratio in result.get("article", {}).get("ratio_to_loop", {}).items():
        rows.append((f"augment end to end ({name}) vs the article's loop, article's setting", f"{ratio:.2f}×"))
    return rows


def figures_store(result: dict) -> list[tuple[str, str]]:
    rows = []
    for setting, figures in result["settings"].items():
        for variant in ("memory", "mapped"):
            rows.append(
                (
                    f"{setting} ({figures['images']:,} images), store {variant}: vs in-memory floor; peak anon MB",
                    f"{figures[variant]['vs_floor']:.2f}; {figures[variant]['peak_anonymous_mb']:,}"
                    f" (store {figures[variant]['store_mb']:,} MB)",
                )
            )
    return rows


# name: (command after the interpreter, arguments in quick mode, with --full, where it runs, its figures). Where:
# None, the project; "quick", a scratch copy on QUICK_PARAMS; "reproduced", a scratch copy on params.yaml with
# train.epochs 1 after a full run (every stage, file and folder of the default pipeline, shorter training), shared.
BENCHMARKS: dict[str, tuple[list[str], list[str], list[str], str | None, Callable[[dict], list]]] = {
    "augment": (["benchmarks/augment.py"], [], [], None, figures_augment),
    "augment_stage": (
        ["benchmarks/augment_stage.py"],
        ["--rounds", "2", "--loop-copies", "4"],
        [],
        None,
        figures_augment_stage,
    ),
    "ingest_incremental": (["benchmarks/ingest_incremental.py"], ["--images", "1000"], [], None, figures_ingest),
    "noop": (["benchmarks/noop.py"], ["--rounds", "3"], [], "reproduced", figures_noop),
    "training": (
        ["benchmarks/training.py"],
        ["--epochs", "3"],
        ["--epochs", "10", "--rounds", "2"],
        "reproduced",
        figures_training,
    ),
    "stage_times": (["benchmarks/stage_times.py"], [], [], "quick", figures_stage_times),
    "parallel": (["benchmarks/parallel.py"], [], [], "quick", figures_parallel),
    "sequential": (["benchmarks/sequential.py"], ["--experiments", "20000"], [], None, figures_sequential),
    "store": (["benchmarks/store.py"], ["--steps", "20"], [], None, figures_store),
    "cost_growth": (  # old code against new in scratch projects of their own, wherever it runs
        ["benchmarks/cost_growth.py"],
        ["--sizes", "250", "--no-push-pull", "--article-rounds", "0", "--noop-rounds", "2"],
        [],
        None,
        figures_cost_growth,
    ),
}
FORCED_IN_PROJECT = {"stage_times"}  # with --full, these force-rerun every stage of the project itself
FULL_PAUSE_SECONDS = 10
ENV = os.environ | {"PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}


def quick_project(folder: Path, changes: dict = QUICK_PARAMS) -> Path:
    """A git + DVC copy of the project in folder, on its params.yaml with `changes` merged in, group by group."""
    rebuild_workspace(workspace_snapshot(ROOT), folder)
    params = yaml.safe_load((folder / "params.yaml").read_text())
    for group, values in changes.items():
        params[group] |= values
    (folder / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    return folder


def workspace(where: str | None, full: bool, scratch: Path) -> Path:
    """The folder a benchmark runs in; the reproduced copy is made once and shared."""
    if where is None or (full and where == "quick"):
        return ROOT
    if where == "quick":
        return quick_project(Path(tempfile.mkdtemp(dir=scratch)))
    folder = scratch / "reproduced"
    if not folder.exists():
        print(
            "== a scratch copy on params.yaml with train.epochs 1, reproduced for the no-op and training benchmarks",
            flush=True,
        )
        quick_project(folder, {"train": {"epochs": 1}})
        subprocess.run(
            [sys.executable, "-m", "tasks.orchestration.parallel"], cwd=folder, env=ENV, check=True, capture_output=True
        )
    return folder


def run_benchmark(name: str, full: bool, scratch: Path) -> dict:
    """Run one benchmark in its own process; its wall time, load averages and whether it succeeded."""
    command, quick, full_arguments, where, _ = BENCHMARKS[name]
    cwd = workspace(where, full, scratch)
    arguments = [
        sys.executable,
        *(str(ROOT / part) if part.endswith(".py") else part for part in command),
        *(full_arguments if full else quick),
    ]
    print(f"== {name}: {' '.join(arguments[1:])} in {cwd}", flush=True)
    load, start = os.getloadavg()[0], time.perf_counter()
    status = subprocess.run(arguments, cwd=cwd, env=ENV | {"AUGFLOW_BENCH_RESULTS": str(results_dir(full))}).returncode
    return {
        "seconds": round(time.perf_counter() - start),
        "load": (round(load, 1), round(os.getloadavg()[0], 1)),
        "ok": status == 0,
    }


def results_dir(full: bool) -> Path:
    return RESULTS_DIR if full else RESULTS_DIR / "quick"


def table(runs: dict[str, dict], full: bool) -> str:
    lines = ["| benchmark | figure | value | benchmark's wall time | load before → after |", "|---|---|---|---|---|"]
    for name, run in runs.items():
        took, load = f"{run['seconds']} s", f"{run['load'][0]} → {run['load'][1]}"
        if not run["ok"]:
            lines.append(f"| {name} | FAILED (see its output above) | | {took} | {load} |")
            continue
        figures = BENCHMARKS[name][4](json.loads((results_dir(full) / f"{name}.json").read_text()))
        for number, (figure, value) in enumerate(figures):
            lines.append(
                f"| {name if number == 0 else ''} | {figure} | {value} "
                f"| {took if number == 0 else ''} | {load if number == 0 else ''} |"
            )
    return "\n".join(lines)


def warn_full(names: list[str]) -> None:
    """Say, before anything runs, that --full reruns the user's own pipeline, and leave time to stop it."""
    if FORCED_IN_PROJECT.isdisjoint(names):
        return
    print(
        f"augflow: make bench FULL=1 reruns every stage of this project ({ROOT}) with `dvc repro --force` on its "
        f"params.yaml, replacing the outputs in data/, models/ and reports/ and taking an hour or more; "
        f"press Ctrl-C in the next {FULL_PAUSE_SECONDS} s to stop.",
        flush=True,
    )
    try:
        time.sleep(FULL_PAUSE_SECONDS)
    except KeyboardInterrupt:
        print("Stopped: nothing ran.")
        sys.exit(130)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="run the long benchmarks on the project's own params.yaml")
    parser.add_argument("--only", nargs="+", choices=list(BENCHMARKS), help="run only these, in this order")
    args = parser.parse_args()
    if args.full:
        warn_full(args.only or list(BENCHMARKS))
    start, scratch = time.perf_counter(), Path(tempfile.mkdtemp(prefix="augflow-bench-"))
    try:
        runs = {}
        for name in args.only or BENCHMARKS:
            runs[name] = run_benchmark(name, args.full, scratch)
            print(table({name: runs[name]}, args.full), flush=True)  # each as it ends, in case a later one is stopped
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    about = machine()
    print(
        f"\nmake bench{' (--full)' if args.full else ' (quick mode)'}: {about['cpus']} × {about['cpu']}, "
        f"Python {about['python']}, "
        f"{time.perf_counter() - start:.0f} s in all, load average now {about['load_average']}\n"
    )
    print(table(runs, args.full))
    if not all(run["ok"] for run in runs.values()):
        sys.exit(1)


if __name__ == "__main__":
    main()
