"""Training stages (and the scaling study's runs) on Dask workers that share nothing with the project but its DVC
remote.

A worker may sit on another machine, so nothing travels through a filesystem: the
coordinator pushes the outputs the training stages read to the project's default DVC
remote and hands each worker a snapshot of the workspace (code, params, dvc.lock) as the
task's argument. The worker rebuilds the workspace in a scratch folder of its own, pulls
those outputs, runs the stage with `dvc repro` and pushes its outputs and its run-cache
entry. The coordinator then reproduces the stage in the project with `dvc repro --pull`:
DVC finds the entry in the run cache and checks the outputs out instead of running the
command. Only stages whose outputs are neither persistent nor outside their DVC project can
come back this way; the training runs and the study's runs are such stages, and they are the
bulk of the work. ingest, augment (a persistent output), evaluate and the study's summary stay
on the coordinator. The study is a DVC project of its own in study/: its stages run there, in
a snapshot of the whole project, since their commands read the project's code and params.
"""

import hashlib
import io
import os
import shutil
import socket
import subprocess
import sys
import tarfile
import tempfile
import threading
from importlib.metadata import version
from pathlib import Path

import yaml
from dvc.config import Config
from dvc.repo import Repo

from tasks.common.errors import UserError
from tasks.common.files import write_text_atomic
from tasks.common.paths import TIMES_DIR, WORKER_DIR
from tasks.orchestration.parallel import Log, StageFailed

CLUSTER_STAGES = ("train@", "train-policy@", "run@")  # name prefixes of the stages sent to workers (run@: the study's)
EXCLUDED = ("study/runs/",)  # the scaling study's runs: its own DVC project, never a stage's input
# What decides a training run's numbers besides its inputs: tasks/common/numerics.py's thread and oneDNN settings
# and the numeric libraries. A worker that differs refuses the stage rather than train it differently.
NUMERIC_VARIABLES = (
    "TF_NUM_INTRAOP_THREADS",
    "TF_NUM_INTEROP_THREADS",
    "OMP_NUM_THREADS",
    "ONEDNN_MAX_CPU_ISA",
    "TF_ENABLE_ONEDNN_OPTS",
)
NUMERIC_PACKAGES = ("tensorflow-cpu", "keras", "numpy")


class NotCarriedBack(UserError):
    """DVC in the project found no run-cache entry for a stage a worker ran: the coordinator does not recompute it."""


def split_pipeline(stages: list[tuple[str, list[str]]]) -> tuple[list[str], list[str], list[str]]:
    """(stages before the cluster's, the cluster's, stages after): training on workers, the rest on the coordinator."""
    remote = [stage for stage, _ in stages if stage.startswith(CLUSTER_STAGES)]
    after: list[str] = []
    for stage, upstream in stages:  # upstream first, so `after` is complete for every upstream stage
        if stage not in remote and any(name in remote or name in after for name in upstream):
            after.append(stage)
    before = [stage for stage, _ in stages if stage not in remote and stage not in after]
    return before, remote, after


def project_root(repo: Path) -> Path:
    """The git repository holding the DVC project repo: the project itself, or the project of which repo is a subrepo
    (study/)."""
    top = subprocess.run(
        ["git", "rev-parse", "--show-toplevel"], cwd=repo, capture_output=True, text=True, check=True
    ).stdout.strip()
    return Path(top).resolve()


def check_cluster(repo: Path, address: str) -> int:
    """The number of workers of the Dask scheduler at address. A UserError says what to fix if the
    DVC project has no default remote (the workers' only way to the data), if no scheduler with workers
    answers, or if the scheduler or a worker cannot import the project's code."""
    from distributed import Client

    if not Config(dvc_dir=str(repo / ".dvc"))["core"].get("remote"):
        inside = repo.resolve().relative_to(project_root(repo))
        where = "" if inside == Path(".") else f" in {inside}/ (a DVC project of its own: `cd {inside}` first)"
        raise UserError(
            "a Dask cluster needs a default DVC remote its workers can reach: add one with "
            f"`dvc remote add -d NAME s3://BUCKET/PATH`{where} and commit {inside / '.dvc/config'} "
            "(see docs/cluster.md)"
        )
    try:
        with Client(address, timeout="10s", set_as_default=False) as client:
            workers = len(client.scheduler_info(n_workers=-1)["workers"])
            lacking = _lacking_code(client) if workers else []
    except (OSError, ValueError, TimeoutError):
        raise UserError(
            f"no Dask scheduler answers at {address} within 10 s: "
            "start one (`dask scheduler`) or fix DASK, --dask or AUGFLOW_DASK"
        ) from None
    if not workers:
        raise UserError(
            f"the Dask scheduler at {address} has no workers: "
            f"start some with `dask worker {address}` (see docs/cluster.md)"
        )
    if lacking:
        raise UserError(
            f"{' and '.join(lacking)} of the Dask cluster at {address} cannot import augflow's code "
            f"(flows/cluster.py): start {'it' if len(lacking) == 1 else 'them'} with the project on PYTHONPATH "
            "and its .venv/bin first on PATH, as docs/cluster.md shows"
        )
    return workers


def _lacking_code(client) -> list[str]:
    """Which of the scheduler and its workers cannot import flows/cluster.py: the scheduler unpickles
    each task the flow sends, which names its functions, and a worker runs them."""
    lacking = []
    try:
        client.run_on_scheduler(exec, "import flows.cluster")
    except ImportError:
        lacking.append("the scheduler")
    outcomes = client.run(exec, "import flows.cluster", on_error="return")
    return lacking + [
        f"worker {worker}" for worker, outcome in sorted(outcomes.items()) if isinstance(outcome, ImportError)
    ]


def _dvc(folder: Path, *arguments: str, log: Log | None = None, env: dict | None = None) -> tuple[int, str]:
    """Run `dvc ARGUMENTS` in folder, each line of its output to log as it comes; (exit status, output).

    The stage commands DVC runs (`python -m tasks.train`) find this environment's Python first.
    """
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    process = subprocess.Popen(
        ["dvc", *arguments],
        cwd=folder,
        env=os.environ | {"PATH": path} | (env or {}),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines = []
    for line in process.stdout:
        lines.append(line)
        if log:
            log(line.rstrip())
    return process.wait(), "".join(lines)


def _dvc_or_fail(folder: Path, *arguments: str, log: Log | None = None, env: dict | None = None) -> str:
    status, output = _dvc(folder, *arguments, log=log, env=env)
    if status:
        raise StageFailed(
            f"`dvc {' '.join(arguments)}` failed with status {status} in {folder} on {socket.gethostname()}:\n"
            f"{output.strip()}"
        )
    return output


def _where(remote: dict[str, str]) -> str:
    return remote.get("url", "(none)") + (f" at {remote['endpointurl']}" if "endpointurl" in remote else "")


def _workspace_files(repo: Path) -> list[str]:
    """What git tracks (as in the working copy) and what it neither tracks nor ignores, minus the pipeline's outputs."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=repo,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split("\0")
    with Repo(str(repo)) as dvc_repo:
        outputs = [Path(out.fs_path).relative_to(repo) for out in dvc_repo.index.outs]
    return sorted(
        name
        for name in set(listed)
        if name
        and (repo / name).is_file()
        and not name.startswith(EXCLUDED)
        and not any(output == Path(name) or output in Path(name).parents for output in outputs)
    )


def workspace_snapshot(repo: Path) -> bytes:
    """A tar.gz of what a worker needs to rebuild the workspace: code, params.yaml (unsaved edits included),
    dvc.yaml, dvc.lock, .dvc/config and DVC's .gitignore files. Never data, caches or credentials."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name in _workspace_files(repo):
            archive.add(repo / name, arcname=name, recursive=False)
    return buffer.getvalue()


def push_outputs(repo: Path, stages: list[str], log: Log | None = None) -> None:
    """Push these stages' outputs to the default remote, where the workers pull them."""
    if stages:
        _dvc_or_fail(repo, "--wait-for-lock", "push", *stages, log=log)


def default_remote(project: Path) -> dict[str, str]:
    """Where the DVC project's default remote is, as its configuration (config.local included) says: url and
    endpointurl."""
    config = Config(dvc_dir=str(project / ".dvc"))
    section = config["remote"].get(config["core"].get("remote", ""), {})
    return {key: section[key] for key in ("url", "endpointurl") if key in section}


def numeric_setup() -> dict[str, str | None]:
    """The settings and library versions a training run's numbers depend on, in this process."""
    return {name: os.environ.get(name) for name in NUMERIC_VARIABLES} | {
        name: version(name) for name in NUMERIC_PACKAGES
    }


def _check_numeric_setup(expected: dict) -> None:
    differences = {
        name: (value, expected.get(name)) for name, value in numeric_setup().items() if value != expected.get(name)
    }
    if differences:
        listed = ", ".join(
            f"{name} {here} (the coordinator: {there})" for name, (here, there) in sorted(differences.items())
        )
        raise UserError(
            f"worker {socket.gethostname()} would train differently from the coordinator: {listed}. "
            "Install the project's requirements.lock on every worker and leave these variables unset"
        )


def _git(folder: Path, *arguments: str) -> None:
    identity = ["-c", "user.name=augflow", "-c", "user.email=augflow@augflow.invalid"]
    subprocess.run(["git", *identity, *arguments], cwd=folder, check=True, capture_output=True)


def rebuild_workspace(snapshot: bytes, folder: Path) -> None:
    """Unpack a workspace snapshot into folder, a git repository whose one commit is the snapshot (DVC wants an SCM)."""
    with tarfile.open(fileobj=io.BytesIO(snapshot), mode="r:gz") as archive:
        archive.extractall(folder, filter="data")
    _git(folder, "init", "-q")
    _git(folder, "add", "-A")
    _git(folder, "commit", "-q", "-m", "augflow: workspace snapshot")


class Workspaces:
    """This worker's scratch workspaces, kept from one stage to the next.

    Rebuilding a workspace and checking out every upstream output (the 28,580 copies of the
    default job among them) costs seconds a stage. The stages of one run share a snapshot, so
    a workspace made for the first serves the rest, one stage at a time. A workspace of an older
    snapshot is recycled for a newer one: what its upstream stages wrote moves into the new
    workspace when the newer snapshot's dvc.lock records those stages exactly as the older did
    (the same inputs, command and output hashes: a team's next run after a change to training),
    so only the stages that changed are pulled again; the old folder is then removed.
    """

    def __init__(self) -> None:
        self._guard = threading.Lock()  # a worker may run several tasks at once, in threads
        self._free: dict[str, list[tuple[Path, set[str]]]] = {}  # snapshot digest -> (folder, upstream stages pulled)
        self._older: list[tuple[Path, set[str]]] = []  # free workspaces of older snapshots, to recycle
        self._newest = ""

    def take(self, snapshot: bytes, stage: str, home: Path, subrepo: str = ".") -> tuple[Path, set[str], str]:
        """(folder, upstream stages whose outputs are already there, the snapshot's digest): a free workspace
        of this snapshot, or a new one, with what a free workspace of an older snapshot can hand over."""
        digest = hashlib.sha256(snapshot).hexdigest()
        with self._guard:
            if digest != self._newest:
                self._newest = digest
                self._older += [
                    workspace for key in list(self._free) if key != digest for workspace in self._free.pop(key)
                ]
            if self._free.get(digest):
                return (*self._free[digest].pop(), digest)
            older = self._older.pop() if self._older else None
        (home / "stages").mkdir(parents=True, exist_ok=True)
        folder = Path(tempfile.mkdtemp(prefix=f"{stage.replace('@', '-')}-", dir=home / "stages"))
        rebuild_workspace(snapshot, folder)
        with Config(dvc_dir=str(folder / subrepo / ".dvc")).edit("local") as local:
            local["cache"] = {
                "dir": str(home / "cache"),
                "type": "hardlink,copy",
            }  # stages replace files, never edit them
        pulled = set() if older is None else _hand_over(*older, folder, subrepo)
        return folder, pulled, digest

    def give_back(self, folder: Path, pulled: set[str], digest: str) -> None:
        with self._guard:
            (self._free.setdefault(digest, []) if digest == self._newest else self._older).append((folder, pulled))


def _locked_stages(project: Path) -> dict:
    try:
        return yaml.safe_load((project / "dvc.lock").read_text()).get("stages", {})
    except FileNotFoundError:
        return {}


def _hand_over(old: Path, pulled: set[str], new: Path, subrepo: str) -> set[str]:
    """Move the outputs of the stages pulled into the old workspace that the new one's dvc.lock records
    unchanged into the new one; remove the old workspace. Returns the stages moved."""
    old_project, project = old / subrepo, new / subrepo
    before, after = _locked_stages(old_project), _locked_stages(project)
    moved = {name for name in pulled if name in after and before.get(name) == after[name]}
    for name in sorted(moved):
        for out in after[name].get("outs", []):
            if (old_project / out["path"]).exists():
                (project / out["path"]).parent.mkdir(parents=True, exist_ok=True)
                os.replace(old_project / out["path"], project / out["path"])
    shutil.rmtree(old, ignore_errors=True)
    return moved


WORKSPACES = Workspaces()


def run_on_worker(
    snapshot: bytes, stage: str, upstream: list[str], expected_setup: dict, log: Log | None = None, subrepo: str = "."
) -> dict:
    """Reproduce one stage from a workspace snapshot in a scratch workspace of this worker's, and push it to the remote.

    The worker first pulls every output of the stage's upstream stages: a training run reads the
    images its training-set file lists, and only that file (which holds their pixel hashes) is a
    declared dependency, so `dvc repro --pull` alone would leave them behind. The worker keeps
    its DVC cache beside its scratch workspaces, so what one run pulled the next need not, and
    reuses a workspace for the next stage of the same snapshot (Workspaces); a failed stage's is removed.
    subrepo names the stage's DVC project within the snapshot (study for the scaling study's runs).
    Returns what the coordinator and tests check: the stage, this worker's host, pid and
    scratch workspace, whether the command ran (False: DVC restored the stage from the remote's
    run cache) and the run's time records (tasks/common/times.py), which live outside DVC's outputs.
    """
    _check_numeric_setup(expected_setup)
    home = Path.cwd() / WORKER_DIR
    scratch, pulled, digest = WORKSPACES.take(snapshot, stage, home, subrepo)
    succeeded = False
    try:
        project = scratch / subrepo
        # DVC keeps per-workspace state under its site cache dir; a scratch workspace's goes with it.
        env = {"DVC_SITE_CACHE_DIR": str(scratch / ".dvc" / "tmp" / "site")}
        missing = [name for name in upstream if name not in pulled]
        if missing:
            _dvc_or_fail(project, "pull", *missing, log=log, env=env)
            pulled.update(missing)
        for record in (scratch / TIMES_DIR).glob("*.json"):  # an earlier stage's, in a reused workspace
            record.unlink()
        output = _dvc_or_fail(project, "repro", "--single-item", "--pull", stage, log=log, env=env)
        _dvc_or_fail(project, "push", "--run-cache", stage, log=log, env=env)
        times = {path.name: path.read_text() for path in (scratch / TIMES_DIR).glob("*.json")}
        succeeded = True
        return {
            "stage": stage,
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "folder": str(scratch),
            "ran": f"Running stage '{stage}'" in output,
            "times": times,
            "remote": default_remote(project),
        }
    finally:
        if succeeded:
            WORKSPACES.give_back(scratch, pulled, digest)
        else:
            shutil.rmtree(scratch, ignore_errors=True)


def bring_back(repo: Path, report: dict, log: Log | None = None) -> str:
    """Bring a stage a worker reproduced (its report from run_on_worker) into the project from the remote's
    run cache, never running it here, with the run's time records; DVC's output.

    `dvc repro --pull` first copies the remote's run cache into the project's (DVC reads entries
    only from its own), then finds the entry for the stage's inputs and checks its outputs out.
    DVC runs a stage's command with $SHELL: the coordinator gives it `false`, so a stage DVC
    cannot restore fails here instead of being recomputed.
    """
    stage = report["stage"]
    status, output = _dvc(
        repo,
        "--wait-for-lock",
        "repro",
        "--single-item",
        "--pull",
        stage,
        log=log,
        env={"SHELL": shutil.which("false")},
    )
    if f"Running stage '{stage}'" in output:
        here, there = default_remote(repo), report.get("remote")
        if there and there != here:
            why = (
                f"the worker pushed it to {_where(there)}, but this project's default remote is {_where(here)} "
                "(`dvc remote list` shows it; .dvc/config.local, which never leaves this machine, "
                "can override .dvc/config)"
            )
        else:
            why = (
                f"the remote {_where(here)} has no run-cache entry for it: "
                "the remote lost the worker's push (emptied or removed meanwhile?), "
                "or the stage's inputs, code or params changed here while it ran"
            )
        raise NotCarriedBack(
            f"{stage} ran on {report['host']} (pid {report['pid']}) but cannot be brought back: {why}. Nothing was "
            "recomputed here and dvc.lock still records the stage's last run (`dvc checkout` puts its outputs back): "
            "fix the remote and run the flow again (a run cache that holds the stage restores it without training)"
        )
    if status:
        raise StageFailed(
            f"`dvc repro --single-item --pull {stage}` failed with status {status} in {repo}:\n{output.strip()}"
        )
    for name, record in report["times"].items():  # each names the model's hash, so a stale one is never believed
        write_text_atomic(repo / TIMES_DIR / name, record)
    return output


def _where(remote: dict[str, str]) -> str:
    return remote.get("url", "(none)") + (f" at {remote['endpointurl']}" if "endpointurl" in remote else "")
