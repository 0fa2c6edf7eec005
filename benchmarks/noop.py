"""`dvc repro` with nothing to do, and `make run`'s and `make flow`'s own runs of it, on the default pipeline.

Run from the project root after `make setup`:

    .venv/bin/python benchmarks/noop.py [--repo PATH] [--rounds 5]

in a project (--repo, default the current folder) after a full run (`make run`);
`make bench` gives it a scratch copy on params.yaml with train.epochs 1, which has
the default pipeline's stages, files and folders (28,580 copies in data/augmented).

In turns, `rounds` times, each a fresh process in which nothing changed:
`dvc repro`; `python -m tasks.orchestration.parallel` (make run's reproduction); `python -m
flows.experiment` (make flow's) against a Prefect server started beforehand;
and once `python -m flows.experiment` as `make flow` runs it, starting its own
temporary server. The server's start-up (to its first healthy answer) is timed
on its own. Each run must report that no stage ran. Medians; writes
benchmarks/results/noop.json.
"""

import argparse
import importlib.util
import json
import os
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.machine import RESULTS_DIR, machine  # noqa: E402
from flows.serve import stop, wait_until_healthy  # noqa: E402
from tasks.common.files import write_text_atomic  # noqa: E402

RESULTS = RESULTS_DIR / "noop.json"
ENV = os.environ | {"PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
COMMANDS = {
    "dvc repro": ["dvc", "repro"],
    "make run's tasks.orchestration.parallel": [sys.executable, "-m", "tasks.orchestration.parallel"],
    "make flow's flow, server running": [sys.executable, "-m", "flows.experiment"],
}


def cpu_of_children() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(repo: Path, command: list[str], env: dict) -> tuple[float, float]:
    """(wall, CPU) seconds of a command that must find nothing to do: CPU seconds are the steadier figure under load."""
    start, cpu = time.perf_counter(), cpu_of_children()
    result = subprocess.run(command, cwd=repo, env=env, capture_output=True, text=True)
    seconds, cpu = time.perf_counter() - start, cpu_of_children() - cpu
    output = result.stdout + result.stderr
    if result.returncode or "Running stage" in output or "reproducing it" in output:
        raise SystemExit(
            f"{' '.join(command)} was not a no-op in {repo} (status {result.returncode}):\n{output[-3000:]}"
        )
    return seconds, cpu


def prefect_server(home: Path) -> tuple[subprocess.Popen, dict, float]:
    """A Prefect server on a free port with its database in home; (process, clients' environment, start-up seconds)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = ENV | {
        "PREFECT_HOME": str(home),
        "PREFECT_API_URL": f"http://127.0.0.1:{port}/api",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    }
    start = time.perf_counter()
    server = subprocess.Popen(
        [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    wait_until_healthy(env, server)
    return server, env, time.perf_counter() - start


def measure(repo: Path, rounds: int, scratch: Path) -> dict:
    server, server_env, server_start = prefect_server(scratch / "prefect")
    try:
        seconds, cpu = {name: [] for name in COMMANDS}, {name: [] for name in COMMANDS}
        for _ in range(rounds):
            for name, command in COMMANDS.items():
                wall, used = timed(repo, command, server_env if "flow" in name else ENV)
                seconds[name].append(round(wall, 2))
                cpu[name].append(round(used, 2))
                print(f"{name:<36} {wall:>6.2f} s ({used:.2f} s CPU)", flush=True)
    finally:
        stop(server)
    make_flow, _ = timed(
        repo, [sys.executable, "-m", "flows.experiment"], ENV | {"PREFECT_HOME": str(scratch / "prefect")}
    )
    return {
        "seconds": seconds,
        "cpu_seconds": cpu,
        "median_seconds": {name: round(statistics.median(values), 2) for name, values in seconds.items()},
        "median_cpu_seconds": {name: round(statistics.median(values), 2) for name, values in cpu.items()},
        "prefect_server_start_seconds": round(server_start, 1),
        "make_flow_with_its_temporary_server_seconds": round(make_flow, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--repo", type=Path, default=Path.cwd(), help="a project after a full run (default: the current folder)"
    )
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    repo, scratch = args.repo.resolve(), Path(tempfile.mkdtemp(prefix="augflow-bench-"))
    try:
        files = sum(len(names) for _, _, names in os.walk(repo / "data"))
        load_before = os.getloadavg()[0]
        result = {
            "machine": machine(),
            "load_average_1min_before": round(load_before, 2),
            "files_under_data": files,
            "yaml_c_parser": importlib.util.find_spec("_ruamel_yaml") is not None,
        }
        result |= measure(repo, args.rounds, scratch)
        result["dvc_config"] = subprocess.run(
            ["dvc", "config", "--list"], cwd=repo, env=ENV, capture_output=True, text=True
        ).stdout.splitlines()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    write_text_atomic(RESULTS, json.dumps(result, indent=2) + "\n")
    print(
        json.dumps(
            {
                key: result[key]
                for key in (
                    "median_seconds",
                    "prefect_server_start_seconds",
                    "make_flow_with_its_temporary_server_seconds",
                )
            }
        )
    )


if __name__ == "__main__":
    main()
