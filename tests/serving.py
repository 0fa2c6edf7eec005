"""Starting `make serve` for tests, and starting and following its runs through the API: shared by the serve tests."""

import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import httpx
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId, LogFilter, LogFilterFlowRunId
from prefect.settings import PREFECT_API_AUTH_STRING, PREFECT_API_URL, temporary_settings

from tests.helpers import ENV, TWO_ARMS_PARAMS

CREDENTIALS = "augflow:not-a-real-secret"
# The tests' tiny data, as every other real run in the suite; two arms.
PARAMS = TWO_ARMS_PARAMS
ARTIFACTS = {"augflow-verdict", "augflow-report", "augflow-report-html"}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def served(project: Path, home: Path, environment: dict[str, str] | None = None, arguments: tuple[str, ...] = ()):
    """`python -m flows.serve` (what `make serve` runs) in project, with arguments besides the ports; yields the API's
    URL once the deployments exist."""
    port, reports_port = free_port(), free_port()
    api = f"http://127.0.0.1:{port}/api"
    env = ENV | {"PREFECT_HOME": str(home), "PREFECT_SERVER_API_AUTH_STRING": CREDENTIALS}  # the one secret serve needs
    assert "PREFECT_API_AUTH_STRING" not in env  # serve's worker, deploy and flow runs get it from the server's
    log = (home.parent / f"{home.name}-serve.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "flows.serve", "--port", str(port), "--reports-port", str(reports_port), *arguments],
        cwd=project,
        env=env | (environment or {}),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 300
        while "Worker" not in Path(log.name).read_text() or len(deployments_so_far(api)) < 3:
            assert process.poll() is None, Path(log.name).read_text()
            assert time.monotonic() < deadline, f"serve did not come up in 300 s:\n{Path(log.name).read_text()}"
            time.sleep(2)
        with temporary_settings(updates={PREFECT_API_URL: api, PREFECT_API_AUTH_STRING: CREDENTIALS}):
            # The tests' own clients, which also learn where the HTML reports are, as serve's flow runs do.
            reports = f"http://127.0.0.1:{reports_port}"
            yield (
                api,
                env | {"PREFECT_API_URL": api, "PREFECT_API_AUTH_STRING": CREDENTIALS, "AUGFLOW_REPORTS_URL": reports},
            )
    finally:
        process.terminate()
        assert process.wait(timeout=60) == 0  # serve stops its server and worker, even a worker that ignores SIGTERM
        assert deployments(api) == []  # the server is gone with it
        log.close()


def refused(error: BaseException) -> bool:
    """Whether an HTTP client's error comes from a refused connection: nothing listens on the port."""
    while error is not None:
        if isinstance(error, ConnectionRefusedError):
            return True
        error = error.__cause__ or error.__context__
    return False


def deployments(api: str) -> list[str]:
    """The names of the server's deployments; [] only when nothing listens on its port (a server not up yet, or gone).

    Any other failure (an error status, a timeout, an answer that is no list of deployments) raises: a server that
    is up but broken is neither gone nor ready."""
    try:
        response = httpx.post(f"{api}/deployments/filter", json={}, auth=tuple(CREDENTIALS.split(":")), timeout=10)
    except httpx.ConnectError as exc:
        if refused(exc):
            return []
        raise
    response.raise_for_status()
    return [deployment["name"] for deployment in response.json()]


def deployments_so_far(api: str) -> list[str]:
    """deployments(api) while the server starts: an answer slower than the client waits (a first start migrates
    its database on a busy machine) counts as not up yet."""
    try:
        return deployments(api)
    except httpx.TimeoutException:
        return []


def start(env: dict, deployment: str, *params: str, flow: str = "augflow-experiment") -> str:
    """Start a deployment's run as docs/prefect.md says, with `prefect deployment run`; return the flow run's id."""
    arguments = [argument for param in params for argument in ("--param", param)]
    output = subprocess.run(
        [sys.executable, "-m", "prefect", "deployment", "run", f"{flow}/{deployment}", *arguments],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return output.split("UUID:")[1].split()[0]


def finished(flow_run_id: str, timeout: float = 900):
    with get_client(sync_client=True) as client:
        deadline = time.monotonic() + timeout
        while not (flow_run := client.read_flow_run(flow_run_id)).state.is_final():
            assert time.monotonic() < deadline, f"flow run {flow_run_id} still {flow_run.state.name} after {timeout} s"
            time.sleep(3)
        return flow_run


def artifacts(flow_run_id: str) -> dict:
    with get_client(sync_client=True) as client:
        listed = client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]))
        )
    return {artifact.key: artifact for artifact in listed}


def logged(flow_run_id: str, text: str, timeout: float = 300):
    """Wait until the flow run's log has a line containing text (a stage starting, say); return the run then."""
    with get_client(sync_client=True) as client:
        deadline = time.monotonic() + timeout
        while not any(
            text in log.message
            for log in client.read_logs(LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id])))
        ):
            flow_run = client.read_flow_run(flow_run_id)
            assert not flow_run.state.is_final(), (
                f"flow run {flow_run_id} ended {flow_run.state.name} before logging {text!r}"
            )
            assert time.monotonic() < deadline, f"flow run {flow_run_id} did not log {text!r} in {timeout} s"
            time.sleep(1)
        return client.read_flow_run(flow_run_id)
