"""`make serve` for real: a Prefect server on a free loopback port, the deployments, a worker, runs through the API.

The server runs with basic auth on, as a team would run it, given only the server's
secret (PREFECT_SERVER_API_AUTH_STRING): every run below also proves that the worker
and flow runs serve starts get the credentials from it, and every call that clients
holding the credentials get through.
"""

import json
import os
import re
import signal
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from prefect.client.orchestration import get_client
from prefect.states import Cancelling

from flows import serve
from tasks.common.errors import run_cli
from tasks.common.paths import WORKTREES_DIR
from tasks.orchestration import lock
from tests.helpers import copy_project, project_files, run, set_params
from tests.serving import ARTIFACTS, CREDENTIALS, PARAMS, artifacts, deployments, finished, logged, served, start

WHAT_IF = 'overrides=["evaluate.confidence=0.9"]'  # the completed what-if runs' override: see the what_if fixture
NIGHTLY = ("30 4 * * 1-5", "Europe/Berlin")  # the server's nightly schedule, not the default, to see the flags used
STUDY_SIZES = [3]  # the `study` deployment's runs: one size of the tests' tiny data, for each arm and seed


@pytest.fixture(scope="module")
def server(tmp_path_factory, serial_reference):
    """`make serve` on a copy of the reproduced two-arm project (conftest.py), its results committed: what-if runs
    then run the stages their overrides change, as on a team's server, and restore the others from DVC's cache."""
    project = copy_project(serial_reference, tmp_path_factory.mktemp("serve") / "project")
    set_params(project, study={"sizes": STUDY_SIZES})
    run(project, "git", "add", "-A")
    run(project, "git", "commit", "-q", "-m", "the reproduced results; the study's sizes")
    nightly = ("--nightly-cron", NIGHTLY[0], "--nightly-timezone", NIGHTLY[1])
    with served(project, project.parent / "prefect-home", arguments=nightly) as (api, env):
        yield project, api, env


def raw_get(base: str, path: str) -> str:
    """GET path exactly as written, `..` and escapes included, which an HTTP client would resolve first; the
    response."""
    host, port = base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as connection:
        connection.sendall(f"GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n".encode())
        return b"".join(iter(lambda: connection.recv(65536), b"")).decode(errors="replace")


def test_the_api_needs_credentials_and_the_report_server_serves_only_its_folder(server):
    project, api, env = server
    assert httpx.post(f"{api}/deployments/filter", json={}).status_code == 401
    assert httpx.post(f"{api}/deployments/filter", json={}, auth=("augflow", "wrong")).status_code == 401
    assert httpx.post(f"{api}/deployments/filter", json={}, auth=tuple(CREDENTIALS.split(":"))).status_code == 200
    # The reports folder is .augflow/reports: params.yaml is two folders up.
    reports, params_yaml = env["AUGFLOW_REPORTS_URL"], (project / "params.yaml").read_text()
    assert raw_get(reports, "/").split()[1] == "200"
    for path in (
        "/../../params.yaml",
        "/%2e%2e/%2e%2e/params.yaml",
        "/..%2f..%2fparams.yaml",
        "/%2E%2E%2F%2E%2E%2Fparams.yaml",
        "/..\\..\\params.yaml",
        "//../../params.yaml",
        "../../params.yaml",
        "/./.././../params.yaml",
    ):
        response = raw_get(reports, path)
        assert response.split()[1] in {"403", "404"} and params_yaml not in response, (path, response)


def test_deployments_are_registered_with_the_nightly_schedule(server):
    _, api, _ = server
    assert sorted(deployments(api)) == ["decide", "nightly", "study", "what-if"]
    with get_client(sync_client=True) as client:
        nightly = client.read_deployment_by_name("augflow-experiment/nightly")
        pool = client.read_work_pool("augflow")
        decide = client.read_deployment_by_name("augflow-decide/decide")
    assert set(decide.parameter_openapi_schema["properties"]) == {
        "repo_dir",
        "jobs",
        "dask",
    }  # what the UI's form offers
    assert [(s.schedule.cron, s.schedule.timezone) for s in nightly.schedules] == [
        NIGHTLY
    ]  # --nightly-cron, --nightly-timezone
    assert pool.concurrency_limit == 1
    # Without the flags (make serve without NIGHTLY_CRON or NIGHTLY_TIMEZONE), prefect.yaml gets the documented default.
    defaults = serve.server_environment(serve.parse_arguments([]))
    assert (defaults["AUGFLOW_NIGHTLY_CRON"], defaults["AUGFLOW_NIGHTLY_TIMEZONE"]) == ("0 2 * * *", "UTC")


def test_a_worker_that_exits_with_an_error_stops_serve_with_one_sentence_and_a_failing_status(server, capfd):
    _, _, env = server
    # serve's worker loop, on this server, with a worker that fails as it starts: a setting it cannot read.
    failing = env | {"PREFECT_WORKER_QUERY_SECONDS": "soon"}
    with pytest.raises(SystemExit) as exited:
        run_cli(lambda: serve.run_worker(failing))  # as `python -m flows.serve` runs it, after its server and deploy
    assert exited.value.code == 2
    stderr = capfd.readouterr().err
    assert "query_seconds" in stderr  # the worker's own output, which the sentence points to
    assert stderr.splitlines()[-1] == (
        "augflow: the Prefect worker exited with status 1 (its output above says why), so make serve stopped, "
        "as no run could start: fix what it reports and start make serve again"
    )


def test_only_a_refused_connection_counts_as_a_server_gone():
    class Broken(BaseHTTPRequestHandler):
        def do_POST(self):
            self.send_error(500, "broken")

        def log_message(self, *args):
            pass

    broken = ThreadingHTTPServer(("127.0.0.1", 0), Broken)
    api = f"http://127.0.0.1:{broken.server_address[1]}/api"
    threading.Thread(target=broken.serve_forever, daemon=True).start()
    try:
        with pytest.raises(httpx.HTTPStatusError, match="500"):  # up but broken: neither gone nor ready
            deployments(api)
    finally:
        broken.shutdown()
        broken.server_close()
    assert deployments(api) == []  # nothing listens on the port any more


def test_a_what_if_run_cancelled_through_the_api_ends_cancelled_and_leaves_no_workspace(server):
    project, _, env = server
    before = project_files(project)
    with lock.holding(project, "a test standing in for make run"):  # what-if runs work beside a run in the project
        flow_run = logged(
            start(env, "what-if", 'overrides=["train.epochs=2"]'), "Running stage 'train@"
        )  # DVC runs the first stage the override changes
    assert (project / WORKTREES_DIR / flow_run.name).is_dir()
    with get_client(sync_client=True) as client:
        client.set_flow_run_state(
            flow_run.id, Cancelling(message="cancelled by the test, as from the UI")
        )  # what the UI's Cancel does
    cancelled = finished(flow_run.id, timeout=180)
    assert cancelled.state.is_cancelled(), (cancelled.state.name, cancelled.state.message)
    assert cancelled.state.message == "Flow run was cancelled successfully."
    assert [
        path.name for path in (project / WORKTREES_DIR).iterdir()
    ] == []  # at once: the run removed it as it stopped
    assert project_files(project) == before


def test_a_killed_worker_crashes_its_run_and_the_next_run_removes_its_workspace_and_completes(server, request):
    project, _, env = server
    before = project_files(project)
    flow_run = logged(start(env, "what-if", 'overrides=["train.epochs=2"]'), "Running stage 'train@")
    child = int(flow_run.infrastructure_pid.rpartition(":")[2])
    worker = int(Path(f"/proc/{child}/stat").read_text().rsplit(")", 1)[1].split()[1])  # its parent
    for group in (os.getpgid(child), os.getpgid(worker)):  # the flow run and its stage's processes, then the worker
        os.killpg(group, signal.SIGKILL)
    crashed = finished(flow_run.id, timeout=120)  # make serve starts another worker, and marks the run first
    assert crashed.state.is_crashed(), (crashed.state.name, crashed.state.message)
    assert crashed.state.message.startswith("Crashed: its process ended without a word, as when its worker is killed;")
    assert (project / WORKTREES_DIR / flow_run.name).is_dir()
    assert project_files(project) == before
    next_run, _ = request.getfixturevalue("what_if")  # the next run, which the tests below check in full
    logged(str(next_run.id), f"Removed the workspaces of what-if runs no longer running: {flow_run.name}")
    assert next_run.state.is_completed(), next_run.state.message
    assert [path.name for path in (project / WORKTREES_DIR).iterdir()] == []


@pytest.fixture(scope="module")
def what_if(server):
    """A what-if run with one override, started as a user would; returns it and params.yaml from before it.

    The override is evaluate's alone, so the run restores every other stage from DVC's cache (shared with the
    project) and runs evaluate, as it would on a team's server.
    """
    project, _, env = server
    params_before = (project / "params.yaml").read_bytes()
    return finished(start(env, "what-if", WHAT_IF)), params_before


def test_what_if_run_records_a_dvc_experiment_and_leaves_params_yaml_alone(server, what_if):
    project, _, _ = server
    flow_run, params_before = what_if
    assert flow_run.state.is_completed(), flow_run.state.message
    assert set(artifacts(str(flow_run.id))) == ARTIFACTS
    link = re.fullmatch(
        r"\[augflow report \(HTML\)\]\((http://127\.0\.0\.1:\d+/[\w-]+\.html)\)",
        artifacts(str(flow_run.id))["augflow-report-html"].data,
    )
    assert link, artifacts(str(flow_run.id))["augflow-report-html"].data
    assert "<title>augflow report</title>" in httpx.get(link[1]).text
    # The run is a DVC experiment named after the flow run, carrying the override; params.yaml is untouched.
    shown = json.loads(run(project, "dvc", "exp", "show", "--json").stdout)
    experiments = {
        revision["name"]: revision["data"]["params"]["params.yaml"]["data"]
        for baseline in shown
        for experiment in baseline["experiments"] or []
        for revision in experiment["revs"]
    }
    assert experiments[flow_run.name]["evaluate"]["confidence"] == 0.9
    assert (project / "params.yaml").read_bytes() == params_before
    assert run(project, "git", "status", "--porcelain", "params.yaml").stdout == ""
    assert (
        "reports/headline.json" in run(project, "dvc", "metrics", "diff", "--all", flow_run.name).stdout
    )  # the headline numbers are the metrics


def test_runs_started_together_take_turns(server, what_if):
    project, _, env = server
    # The what-if run repeats what_if's, so DVC's run cache (shared with the project) restores every stage.
    nightly, what_if = start(env, "nightly"), start(env, "what-if", WHAT_IF)
    first, second = sorted((finished(nightly), finished(what_if)), key=lambda flow_run: flow_run.start_time)
    assert first.state.is_completed() and second.state.is_completed(), (first.state.message, second.state.message)
    assert first.end_time <= second.start_time
    # The nightly run reproduced the committed pipeline in the project; the what-if run left it so.
    assert "up to date" in run(project, "dvc", "status").stdout
    assert run(project, "git", "status", "--porcelain", "params.yaml", "dvc.yaml").stdout == ""


def test_a_bad_override_fails_the_run_with_one_sentence_and_no_experiment(server):
    project, _, env = server
    flow_run = finished(start(env, "what-if", 'overrides=["train.epoch=2"]'))
    assert flow_run.state.is_failed()
    assert "train.epoch is not a known setting: did you mean train.epochs?" in flow_run.state.message
    assert not list((project / ".dvc/tmp/augflow-experiments").glob("*"))


def test_the_study_deployment_runs_the_scaling_study_on_the_worker_and_writes_its_curve(server):
    """The `study` deployment, started as a user would, runs study/dvc.yaml's runs and its summary on the worker."""
    project, _, env = server
    flow_run = finished(start(env, "study", flow="augflow-study"))
    assert flow_run.state.is_completed(), flow_run.state.message
    assert set(artifacts(str(flow_run.id))) == {"augflow-scaling"}
    scaling = json.loads((project / "reports/scaling.json").read_text())
    assert scaling["sizes"] == STUDY_SIZES and set(scaling["test_accuracy"]) == set(PARAMS["train"]["arms"])
    for arm, [point] in scaling["test_accuracy"].items():
        ran = json.loads((project / f"study/runs/{STUDY_SIZES[0]}-{arm}-0.json").read_text())
        assert point["runs"] == [ran["test_accuracy"]] and ran["train_images"] == 2 * STUDY_SIZES[0]
    assert "up to date" in run(project / "study", "dvc", "status").stdout
    assert run(project, "git", "status", "--porcelain", "params.yaml", "dvc.yaml").stdout == ""


CHROMIUM = Path("/usr/bin/chromium")  # Debian's chromium; Playwright drives it, never downloading a browser of its own


@pytest.mark.skipif(
    not CHROMIUM.exists(), reason="Debian's chromium is not installed; make test installs it when run as root"
)
def test_the_ui_shows_the_flow_runs_verdict_artifact(server, what_if, tmp_path):
    from playwright.sync_api import sync_playwright

    _, api, _ = server
    flow_run, _ = what_if
    ui = api.removesuffix("/api")
    quiet = [
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
    ]
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=quiet)
        page = browser.new_page()
        page.goto(ui)
        page.locator("input[type=password]").fill(CREDENTIALS)  # the UI's login, for a server with basic auth
        page.keyboard.press("Enter")
        page.wait_for_url("**/dashboard**")
        page.goto(f"{ui}/runs/flow-run/{flow_run.id}")
        page.get_by_text("Artifacts", exact=True).click()
        task_runs = page.get_by_text("Task runs", exact=True)
        task_runs.wait_for()
        task_runs.scroll_into_view_if_needed()  # the tasks' artifacts load once their section is in view
        page.get_by_text("augflow-verdict", exact=True).wait_for(timeout=60_000)
        page.screenshot(path=tmp_path / "artifacts.png")
        assert page.get_by_text("no confidence interval can be given from one run").first.is_visible()
        browser.close()
