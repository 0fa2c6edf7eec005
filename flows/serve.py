"""`make serve`: a Prefect server on this machine, augflow's deployments and a worker to run them.

One command stands up everything a team needs to run augflow nightly and
start what-if runs from the UI, and one Ctrl-C stops it all:
- `prefect server start` on 127.0.0.1, its SQLite database under a
  project-local PREFECT_HOME (or PostgreSQL, through
  PREFECT_SERVER_DATABASE_CONNECTION_URL);
- the process work pool `augflow`, limited to one flow run at a time, since
  every run works in this one project;
- the deployments of prefect.yaml (`nightly` on a cron schedule, `what-if`
  and the scaling `study` on demand), registered with `prefect deploy --all`;
- a small web server for the runs' HTML reports, which the UI links to;
- a worker on the pool, in the foreground, started again if it is killed.
"""

import argparse
import functools
import os
import signal
import subprocess
import sys
import threading
import time
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import WorkPoolCreate
from prefect.client.schemas.filters import (
    FlowRunFilter,
    FlowRunFilterState,
    FlowRunFilterStateType,
    WorkPoolFilter,
    WorkPoolFilterName,
)
from prefect.client.schemas.objects import StateType
from prefect.settings import PREFECT_API_AUTH_STRING, PREFECT_API_URL, temporary_settings
from prefect.states import Crashed
from prefect.workers.process import ProcessWorker

from flows.experiment import PROJECT_DIR, PUBLISHED_DIR, REPORTS_URL
from tasks.common.errors import UserError, run_cli
from tasks.orchestration.experiments import process_running

WORK_POOL = "augflow"


def server_environment(arguments: argparse.Namespace) -> dict[str, str]:
    """The environment shared by the server, `prefect deploy`, the worker and the flow runs it starts.

    With basic auth on, the clients use the server's own credentials unless told otherwise, so that
    PREFECT_SERVER_API_AUTH_STRING alone is enough: one secret to set, none to keep in step."""
    port = arguments.port
    defaults = {"PREFECT_HOME": str(PROJECT_DIR / ".prefect")}
    if "PREFECT_SERVER_API_AUTH_STRING" in os.environ:
        defaults["PREFECT_API_AUTH_STRING"] = os.environ["PREFECT_SERVER_API_AUTH_STRING"]
    return (
        defaults
        | os.environ
        | {
            "PREFECT_API_URL": f"http://127.0.0.1:{port}/api",
            "PREFECT_SERVER_API_HOST": "127.0.0.1",
            "PREFECT_SERVER_API_PORT": str(port),
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "DO_NOT_TRACK": "1",
            "DVC_NO_ANALYTICS": "1",
            REPORTS_URL: f"http://127.0.0.1:{arguments.reports_port}",
            "AUGFLOW_NIGHTLY_CRON": arguments.nightly_cron,  # read by prefect.yaml
            "AUGFLOW_NIGHTLY_TIMEZONE": arguments.nightly_timezone,
            "PWD": str(PROJECT_DIR),  # prefect.yaml's pull step sets each flow run's working directory from it
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        }
    )


def prefect(*arguments: str) -> list[str]:
    return [sys.executable, "-m", "prefect", *arguments]


def wait_until_healthy(environment: dict[str, str], server: subprocess.Popen, timeout: float = 300) -> None:
    """Block until the API answers; the first start migrates the database, which takes a while on 2 cores."""
    credentials = environment.get("PREFECT_API_AUTH_STRING")
    auth = httpx.BasicAuth(*credentials.split(":", 1)) if credentials else None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise UserError(
                f"the Prefect server stopped at start-up (exit status {server.returncode}): see {log_file(environment)}"
            )
        try:
            if httpx.get(f"{environment['PREFECT_API_URL']}/health", auth=auth, timeout=5).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(1)
    raise UserError(f"the Prefect server did not answer within {timeout:.0f} s: see {log_file(environment)}")


def log_file(environment: dict[str, str]) -> Path:
    return Path(environment["PREFECT_HOME"]) / "server.log"


def serve_reports(port: int) -> ThreadingHTTPServer:
    """Serve the published HTML reports on 127.0.0.1, in a background thread."""
    folder = PROJECT_DIR / PUBLISHED_DIR
    folder.mkdir(parents=True, exist_ok=True)
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(folder))
    try:
        reports = ThreadingHTTPServer(("127.0.0.1", port), handler)
    except OSError as exc:
        raise UserError(
            f"cannot serve the HTML reports on 127.0.0.1:{port} ({exc.strerror}): choose another REPORTS_PORT"
        ) from None
    threading.Thread(target=reports.serve_forever, daemon=True).start()
    return reports


def api_settings(environment: dict[str, str]) -> dict:
    """The Prefect settings of serve's own API client: the server's address and credentials."""
    return {
        PREFECT_API_URL: environment["PREFECT_API_URL"],
        PREFECT_API_AUTH_STRING: environment.get("PREFECT_API_AUTH_STRING"),
    }


def deploy(environment: dict[str, str]) -> None:
    """Create the work pool (one run at a time) through the API, then register prefect.yaml's deployments."""
    pool = WorkPoolCreate(
        name=WORK_POOL,
        type="process",
        base_job_template=ProcessWorker.get_default_base_job_template(),
        concurrency_limit=1,
    )
    with temporary_settings(updates=api_settings(environment)), get_client(sync_client=True) as client:
        client.create_work_pool(
            pool, overwrite=True
        )  # what `prefect work-pool create --overwrite` does, without its process
    command = prefect("--no-prompt", "deploy", "--all")
    result = subprocess.run(command, cwd=PROJECT_DIR, env=environment, capture_output=True, text=True)
    if result.returncode:
        raise UserError(f"'{' '.join(command[2:])}' failed: {(result.stdout + result.stderr).strip()}")


def start(command: list[str], environment: dict[str, str], **options) -> subprocess.Popen:
    """A child in a process group of its own, so that stopping it also stops the flow runs it started."""
    return subprocess.Popen(command, cwd=PROJECT_DIR, env=environment, start_new_session=True, **options)


def stop(process: subprocess.Popen, grace_seconds: float = 10) -> None:
    """Ask the process group to stop; kill it if it has not within the grace period (a worker may wait on forever)."""
    for sent in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(process.pid, sent)
            process.wait(timeout=grace_seconds)
            return
        except ProcessLookupError:
            return
        except subprocess.TimeoutExpired:
            continue


ORPHANED = (
    "Crashed: its process ended without a word, as when its worker is killed; make serve found it so when it "
    "started the worker again. The next what-if run removes its workspace; start the run again."
)


def running(infrastructure_pid: str | None) -> bool:
    """Whether a flow run's process, as the process worker records it (pid, or host:pid), still runs."""
    pid = (infrastructure_pid or "").rpartition(":")[2]
    return pid.isdigit() and process_running(int(pid))


def crash_orphaned_runs(environment: dict[str, str]) -> list[str]:
    """Before a worker starts, mark Crashed the pool's runs the API shows unfinished but whose process is gone.

    A killed worker and flow run report nothing: the API would show the run Running for ever, and the
    pool, one run at a time, would start no other. A run whose process outlived its worker goes on."""
    unfinished = FlowRunFilterStateType(any_=[StateType.PENDING, StateType.RUNNING, StateType.CANCELLING])
    with temporary_settings(updates=api_settings(environment)), get_client(sync_client=True) as client:
        runs = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(state=FlowRunFilterState(type=unfinished)),
            work_pool_filter=WorkPoolFilter(name=WorkPoolFilterName(any_=[WORK_POOL])),
        )
        orphaned = [run for run in runs if not running(run.infrastructure_pid)]
        for run in orphaned:
            client.set_flow_run_state(run.id, Crashed(message=ORPHANED), force=True)
    return [run.name for run in orphaned]


def run_worker(environment: dict[str, str]) -> None:
    """The pool's worker, in the foreground; one killed (by a signal) is replaced, one that exits on its own ends serve,
    with a UserError (exit status 2) if the worker's exit status says it failed."""
    while True:
        crashed = crash_orphaned_runs(environment)
        if crashed:
            print(f"augflow: marked Crashed the runs whose process had gone: {', '.join(crashed)}.", flush=True)
        worker = start(prefect("worker", "start", "--pool", WORK_POOL, "--limit", "1"), environment)
        try:
            status = worker.wait()
        except BaseException:  # Ctrl-C or SIGTERM: the worker and its runs stop with serve
            stop(worker)
            raise
        if status > 0:
            raise UserError(
                f"the Prefect worker exited with status {status} (its output above says why), so make serve stopped, "
                "as no run could start: fix what it reports and start make serve again"
            )
        if status == 0:
            return
        print(f"augflow: the worker was killed (signal {-status}); starting another.", flush=True)


def serve(arguments: argparse.Namespace) -> None:
    environment = server_environment(arguments)
    Path(environment["PREFECT_HOME"]).mkdir(parents=True, exist_ok=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # stop the worker and server as Ctrl-C does
    processes = []
    try:
        with open(log_file(environment), "ab") as log:
            command = prefect("server", "start", "--host", "127.0.0.1", "--port", str(arguments.port))
            processes.append(start(command, environment, stdout=log, stderr=subprocess.STDOUT))
        wait_until_healthy(environment, processes[0])
        serve_reports(arguments.reports_port)
        deploy(environment)
        print(
            f"augflow: Prefect UI at http://127.0.0.1:{arguments.port}, HTML reports at {environment[REPORTS_URL]}; "
            f"deployments 'augflow-experiment/nightly' ({arguments.nightly_cron}, {arguments.nightly_timezone}), "
            "'augflow-experiment/what-if', 'augflow-study/study' and 'augflow-decide/decide'. Ctrl-C stops everything.",
            flush=True,
        )
        run_worker(environment)
    except KeyboardInterrupt:
        pass
    finally:
        for process in reversed(processes):
            stop(process)


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=4200, help="the Prefect UI and API (default 4200)")
    parser.add_argument("--reports-port", type=int, default=4201, help="the HTML reports (default 4201)")
    parser.add_argument(
        "--nightly-cron", default="0 2 * * *", help="when the nightly deployment runs (default '0 2 * * *')"
    )
    parser.add_argument(
        "--nightly-timezone", default="UTC", help="the cron's time zone, e.g. Europe/Berlin (default UTC)"
    )
    return parser.parse_args(argv)


def main() -> None:
    serve(parse_arguments())


if __name__ == "__main__":
    run_cli(main)
