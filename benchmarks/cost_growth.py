"""Cost as the data grows: seconds per training image of each step, at several sizes, old code against new.

Run from the project root after `make setup`:

    .venv/bin/python benchmarks/cost_growth.py [--sizes 250 1000 5750] [--old REF] [--new REF]
        [--no-push-pull] [--noop-rounds 3] [--article-rounds 3] [--article-loop-copies 20] [--defaults]
        [--resume]
    .venv/bin/python benchmarks/cost_growth.py --report   # the table and plot again, from the JSON

Two versions of augflow, git refs (--old, default OLD: main before the copies were stored per
image; --new, default HEAD), each in a scratch project of its own (the ref's files, `git archive`,
made a git repository), on Fashion-MNIST's pullover and coat with one seed, `train.arms` original
and augmented, 2 epochs and the ref's own other defaults (20 copies an image). At each size
(`ingest.train_per_class`), every step runs in both projects, one after the other, the order
swapped from step to step, so a change in the machine's load hits both:

- ingest: `dvc repro --single-item ingest`;
- augment: `dvc repro --single-item augment`, end to end, DVC's hashing and caching included;
- training: `dvc repro --single-item train@augmented-0` (2 epochs), the whole command and its
  second epoch alone (from the moments its dvclive curves were written: a steady epoch, the
  set's decoding and TensorFlow's start left out), and the command's peak resident memory;
- no-op: `dvc repro` of the whole pipeline (the rest reproduced first), `--noop-rounds` times,
  the median; each must run nothing;
- push and pull: `dvc push ingest augment` to a moto S3 server on loopback (one per size, a
  prefix per version), then `git clone` of the project and `dvc pull ingest augment` in the
  clone, its DVC cache empty.

Every figure is divided by the training images (2 x the size): the per-image cost, which stays
flat when a step's cost grows with the data and not with the file count. An epoch shows each
training image 21 times (the original and its 20 copies). Then, with --article-rounds, the
augment stage of each version on the article's setting (benchmarks/augment_stage.py: 538
images of 150x150 colour, 20 copies) against the article's ImageDataGenerator loop saving
JPEG, in turns. With --defaults, last, push then pull as above on each version's own default
params (3 seeds: the defaults' transfer, where the sizes above have one seed). Writes
benchmarks/results/cost_growth.json (after each size, so a long run stopped midway keeps what it
measured, and --resume goes on from there, keeping the article's and the defaults' figures when
they are not measured again) and cost_growth.png beside it, and prints the tables. Wall seconds
and CPU seconds (the commands' processes; the S3 server's, in this process, left out) are both
kept: on a loaded machine CPU is the steadier.
"""

import argparse
import json
import logging
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager, nullcontext
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks import augment_stage  # noqa: E402
from benchmarks.machine import RESULTS_DIR, machine  # noqa: E402
from tasks.common.files import write_text_atomic  # noqa: E402
from tasks.common.params import IngestParams  # noqa: E402

RESULTS = RESULTS_DIR / "cost_growth.json"
PLOT = RESULTS.with_suffix(".png")
OLD = "6269db5"  # main before issue 25: every augmented copy a PNG file of its own
SIZES = [250, 1000, 5750]  # training images per class: the classic demonstration's, and all of a class
SEED, ARM, EPOCHS, CLASSES = 0, "augmented", 2, ["pullover", "coat"]
STEPS = ["ingest", "augment", "training run", "epoch", "no-op repro", "push", "pull"]
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_DEFAULT_REGION": "us-east-1"}
BUCKET = "augflow-bench"
ENV = {name: value for name, value in os.environ.items() if name != "PYTHONPATH"} | {
    "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    "DO_NOT_TRACK": "1",
    "DVC_NO_ANALYTICS": "1",
}


class StepFailed(Exception):
    """A command of the benchmark failed; the message holds the end of its output."""


def resolve(ref: str) -> str:
    return subprocess.run(
        ["git", "rev-parse", ref], cwd=ROOT, check=True, capture_output=True, text=True
    ).stdout.strip()


def git(folder: Path, *arguments: str) -> None:
    subprocess.run(["git", *arguments], cwd=folder, check=True, capture_output=True)


def sized(size: int) -> dict:
    """The benchmark's params at this size, group by group."""
    return {
        "ingest": {"source": IngestParams().source, "classes": CLASSES, "train_per_class": size},
        "train": {"seeds": [SEED], "arms": ["original", ARM], "epochs": EPOCHS},
    }


def project_at(commit: str, folder: Path, changes: dict) -> Path:
    """A git + DVC project in folder with the files of commit, its params.yaml with `changes` merged in."""
    folder.mkdir(parents=True)
    archive = subprocess.run(["git", "archive", commit], cwd=ROOT, check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True)
    (folder / "dvc.lock").unlink(missing_ok=True)
    params = yaml.safe_load((folder / "params.yaml").read_text())
    for group, values in changes.items():
        params[group] |= values
    (folder / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    git(folder, "init", "-q")
    git(folder, "add", "-A")
    git(folder, "-c", "user.name=bench", "-c", "user.email=bench@localhost", "commit", "-q", "-m", "bench")
    return folder


def timed(command: list[str], cwd: Path, log: Path, env: dict, watch: Path | None = None) -> dict:
    """Run command; its wall and CPU seconds (its processes' and their children's), peak resident MB and, with
    watch, the successive modification times (ns) of that file while it ran. Output goes to log."""
    with open(log, "ab") as out:
        out.write(f"\n$ {' '.join(command)}  (in {cwd})\n".encode())
        out.flush()
        start = time.perf_counter()
        process = subprocess.Popen(command, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)
        marks: list[tuple[int, float]] = []  # (the watched file's mtime in ns, the command's CPU seconds then)
        while True:  # wait4: this child's usage, its own children's included, unlike Popen.wait
            pid, status, usage = os.wait4(process.pid, os.WNOHANG if watch else 0)
            if watch:  # once more after the end, in case the last write came just before it
                mtime = watch.stat().st_mtime_ns if watch.exists() else None
                if mtime and (not marks or mtime != marks[-1][0]):
                    marks.append((mtime, usage.ru_utime + usage.ru_stime if pid else tree_cpu(process.pid)))
            if pid:
                break
            time.sleep(0.01)
        seconds = time.perf_counter() - start
        process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode:
        tail = log.read_text(errors="replace")[-3000:]
        raise StepFailed(f"{' '.join(command)} failed in {cwd} (status {process.returncode}):\n{tail}")
    return {
        "seconds": seconds,
        "cpu_seconds": usage.ru_utime + usage.ru_stime,
        "peak_mb": usage.ru_maxrss / 1024,
        "marks": marks,
    }


def tree_cpu(root: int) -> float:
    """CPU seconds of a running process and its descendants so far, from /proc."""
    stats = {}
    for entry in Path("/proc").glob("[0-9]*"):
        try:  # after the ")" that ends the command's name: state, ppid, ..., utime, stime, cutime, cstime at 11-14
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # a process that ended meanwhile
            continue
        stats[int(entry.name)] = (int(fields[1]), sum(int(value) for value in fields[11:15]))
    tree, ticks, frontier = set(), 0, [root]
    while frontier:
        pid = frontier.pop()
        if pid in tree or pid not in stats:
            continue
        tree.add(pid)
        ticks += stats[pid][1]
        frontier += [child for child, (parent, _) in stats.items() if parent == pid]
    return ticks / os.sysconf("SC_CLK_TCK")


def files_and_bytes(folder: Path) -> tuple[int, int]:
    count = size = 0
    for parent, _, names in os.walk(folder):
        count += len(names)
        size += sum(os.lstat(os.path.join(parent, name)).st_size for name in names)
    return count, size


@contextmanager
def s3_server():
    """moto's S3 server on a free loopback port, in this process, with the benchmark's bucket; its endpoint.
    Emptied at the end (moto keeps every object in memory)."""
    import boto3
    import requests
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # not a line per request
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    endpoint = "http://{}:{}".format(*server.get_host_and_port())
    try:
        boto3.client(
            "s3",
            endpoint_url=endpoint,
            aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            region_name=CREDENTIALS["AWS_DEFAULT_REGION"],
        ).create_bucket(Bucket=BUCKET)
        yield endpoint
    finally:
        requests.post(f"{endpoint}/moto-api/reset", timeout=60)
        server.stop()


def ran_nothing(log: Path) -> bool:
    tail = log.read_text(errors="replace").rsplit("\n$ ", 1)[-1]
    return "Running stage" not in tail


class Version:
    """One version's scratch project at one size, and what its steps measured."""

    def __init__(self, name: str, commit: str, folder: Path, size: int, env: dict, changes: dict | None = None) -> None:
        self.name, self.size, self.env = name, size, env
        self.project = project_at(commit, folder / "project", sized(size) if changes is None else changes)
        self.clone = folder / "clone"
        self.log = folder.parent / f"{name}-{size}.log"
        self.seconds: dict[str, float] = {}
        self.cpu_seconds: dict[str, float] = {}
        self.extra: dict = {}

    def run(self, step: str, command: list[str], cwd: Path | None = None, watch: Path | None = None) -> dict:
        result = timed(command, cwd or self.project, self.log, self.env, watch)
        self.seconds[step], self.cpu_seconds[step] = result["seconds"], result["cpu_seconds"]
        return result

    def warm_up(self) -> None:
        """Not timed: DVC's first command in a project (and in the run) pays for what later ones find ready."""
        timed(["dvc", "status"], self.project, self.log, self.env)

    def ingest(self) -> None:
        self.run("ingest", ["dvc", "repro", "--single-item", "ingest"])

    def augment(self) -> None:
        self.run("augment", ["dvc", "repro", "--single-item", "augment"])
        self.extra["files_under_data"], self.extra["bytes_under_data"] = files_and_bytes(self.project / "data")

    def train(self) -> None:
        curve = self.project / "reports" / "train" / f"{ARM}-seed-{SEED}" / "plots" / "metrics" / "train" / "loss.tsv"
        result = self.run("training run", ["dvc", "repro", "--single-item", f"train@{ARM}-{SEED}"], watch=curve)
        self.extra["training_peak_mb"] = round(result["peak_mb"])
        marks = result["marks"]
        if len(marks) >= EPOCHS:  # the curves are written as each epoch ends
            (start, cpu_start), (end, cpu_end) = marks[EPOCHS - 2], marks[EPOCHS - 1]
            self.seconds["epoch"], self.cpu_seconds["epoch"] = (end - start) / 1e9, cpu_end - cpu_start
        self.extra["curve_writes"] = len(marks)

    def noop(self, rounds: int) -> None:
        timed(["dvc", "repro"], self.project, self.log, self.env)  # the rest of the pipeline, not timed
        runs = []
        for _ in range(rounds):
            runs.append(timed(["dvc", "repro"], self.project, self.log, self.env))
            if not ran_nothing(self.log):
                raise StepFailed(f"a second `dvc repro` ran a stage in {self.project}; see {self.log}")
        self.extra["no-op repro runs"] = [round(run["seconds"], 2) for run in runs]
        self.seconds["no-op repro"] = statistics.median(run["seconds"] for run in runs)
        self.cpu_seconds["no-op repro"] = statistics.median(run["cpu_seconds"] for run in runs)

    def remote(self, endpoint: str) -> None:
        for arguments in (
            ["remote", "add", "-d", "bench", f"s3://{BUCKET}/{self.name}-{self.size}"],
            ["remote", "modify", "bench", "endpointurl", endpoint],
        ):
            timed(["dvc", *arguments], self.project, self.log, self.env)
        git(self.project, "add", "-A")
        git(self.project, "-c", "user.name=bench", "-c", "user.email=bench@localhost", "commit", "-q", "-m", "results")

    def push(self) -> None:
        self.run("push", ["dvc", "push", "ingest", "augment"])

    def pull(self) -> None:
        git(self.project.parent, "clone", "-q", str(self.project), str(self.clone))
        self.run("pull", ["dvc", "pull", "ingest", "augment"], cwd=self.clone)
        pulled, _ = files_and_bytes(self.clone / "data")
        if pulled != self.extra["files_under_data"]:
            raise StepFailed(f"the clone has {pulled} files under data/, the project {self.extra['files_under_data']}")
        shutil.rmtree(self.clone)

    def figures(self) -> dict:
        images = len(CLASSES) * self.size
        return {
            "training_images": images,
            "images_per_epoch": images * (1 + self._copies()),
            "seconds": {step: round(value, 3) for step, value in self.seconds.items()},
            "cpu_seconds": {step: round(value, 2) for step, value in self.cpu_seconds.items()},
            "ms_per_training_image": {step: round(1000 * value / images, 4) for step, value in self.seconds.items()},
        } | self.extra

    def _copies(self) -> int:
        return yaml.safe_load((self.project / "params.yaml").read_text())["augment"]["copies"]


def measure_size(size: int, commits: dict[str, str], scratch: Path, push_pull: bool, noop_rounds: int) -> dict:
    """Every step at this size in each version's project, in turns; their figures, and new over old."""
    env = ENV | CREDENTIALS | {"DVC_SITE_CACHE_DIR": str(scratch / "dvc-site-cache")}
    versions = [Version(name, commit, scratch / f"{name}-{size}", size, env) for name, commit in commits.items()]
    steps = [Version.warm_up, Version.ingest, Version.augment, Version.train, lambda version: version.noop(noop_rounds)]
    load = os.getloadavg()[0]
    with s3_server() if push_pull else nullcontext() as endpoint:
        if endpoint:
            steps += [lambda version: version.remote(endpoint), Version.push, Version.pull]
        for number, step in enumerate(steps):
            for version in versions if number % 2 == 0 else versions[::-1]:
                before = set(version.seconds)
                step(version)
                done = ", ".join(
                    f"{name} {version.seconds[name]:.2f} s" for name in version.seconds if name not in before
                )
                if done:
                    print(f"{size} per class, {version.name}: {done}", flush=True)
    figures = {version.name: version.figures() for version in versions}
    for version in versions:
        shutil.rmtree(version.project.parent)
    old, new = figures.get("old", {}).get("seconds", {}), figures.get("new", {}).get("seconds", {})
    figures["new_over_old"] = {step: round(new[step] / old[step], 3) for step in STEPS if step in old and step in new}
    figures["load_average_1min"] = [round(load, 2), round(os.getloadavg()[0], 2)]
    return figures


def transfer_on_defaults(commits: dict[str, str], scratch: Path) -> dict:
    """`dvc push ingest augment` then a fresh clone's `dvc pull ingest augment` on each version's own params.yaml
    (3 seeds, 250 training images per class each), in turns; seconds and files."""
    env = ENV | CREDENTIALS | {"DVC_SITE_CACHE_DIR": str(scratch / "dvc-site-cache")}
    versions = [Version(name, commit, scratch / f"{name}-defaults", 0, env, {}) for name, commit in commits.items()]

    def made(version: Version) -> None:  # not timed: ingest and augment, as a run before the push makes them
        timed(["dvc", "repro", "augment"], version.project, version.log, env)
        files, size = files_and_bytes(version.project / "data")
        version.extra |= {"files_under_data": files, "bytes_under_data": size}

    with s3_server() as endpoint:
        steps = [Version.warm_up, made, lambda version: version.remote(endpoint), Version.push, Version.pull]
        for number, step in enumerate(steps):
            for version in versions if number % 2 == 0 else versions[::-1]:
                step(version)
    figures = {}
    for version in versions:
        figures[version.name] = {
            "seconds": {step: round(value, 2) for step, value in version.seconds.items()},
            "cpu_seconds": {step: round(value, 2) for step, value in version.cpu_seconds.items()},
        } | version.extra
        shutil.rmtree(version.project.parent)
    old, new = (figures[name]["seconds"] for name in ("old", "new"))
    figures["old_over_new"] = {step: round(old[step] / new[step], 2) for step in ("push", "pull")}
    figures["old_over_new"]["push then pull"] = round((old["push"] + old["pull"]) / (new["push"] + new["pull"]), 2)
    print(f"defaults, push then pull: old {old['push'] + old['pull']:.1f} s, new {new['push'] + new['pull']:.1f} s")
    return figures


def article(commits: dict[str, str], scratch: Path, rounds: int, loop_copies: int) -> dict:
    """The augment stage of each version on the article's setting against the article's loop, in turns; medians."""
    source = augment_stage.dogs_cat(scratch / "dogs_cat")
    bases = {
        name: augment_stage.ingest_article_setting(project_at(commit, scratch / f"article-{name}", {}), source)
        for name, commit in commits.items()
    }
    made = {name: augment_stage.copies_made(base) for name, base in bases.items()}
    stage, loop, hashes = {name: [] for name in bases}, [], {name: set() for name in bases}
    for round_ in range(rounds):
        for name, base in bases.items() if round_ % 2 == 0 else reversed(bases.items()):
            seconds, digest = augment_stage.stage_seconds(base, scratch / f"article-{name}-{round_}", None)
            stage[name].append(made[name] / seconds)
            hashes[name].add(digest)
        loop_seconds = augment_stage.loop_seconds(source / "train", scratch / f"loop-{round_}", loop_copies)
        loop.append(augment_stage.TRAIN * loop_copies / loop_seconds)
        rates = ", ".join(f"{name} {values[-1]:.0f}" for name, values in stage.items())
        print(f"article's setting, round {round_ + 1}: stage {rates} images/s; its loop {loop[-1]:.0f}", flush=True)
    for base in bases.values():
        shutil.rmtree(base)
    return {
        "copies_made": made,
        "rounds": rounds,
        "loop_copies": loop_copies,
        "stage_images_per_s": {name: [round(value) for value in values] for name, values in stage.items()},
        "article_loop_images_per_s": [round(value) for value in loop],
        "ratio_to_loop": {
            name: round(statistics.median(s / lp for s, lp in zip(values, loop)), 2) for name, values in stage.items()
        },
        "copies_md5": {name: sorted(values) for name, values in hashes.items()},
    }


def growth(result: dict) -> dict:
    """Per version and step: the per-image cost at each size over the smallest size's (flat = 1)."""
    sizes = sorted(result["sizes"], key=int)
    table = {}
    for version in ("old", "new"):
        for step in STEPS:
            costs = {
                size: result["sizes"][size].get(version, {}).get("ms_per_training_image", {}).get(step)
                for size in sizes
            }
            first = costs[sizes[0]]
            if first:
                table.setdefault(version, {})[step] = {
                    size: round(cost / first, 2) for size, cost in costs.items() if cost is not None
                }
    return table


def short(value: float | None) -> str:
    """Three significant digits at most, and no exponent: 0.0412, 4.12, 41.2, 412, 4,120."""
    if value is None:
        return ""
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"


def tables(result: dict) -> str:
    """Markdown: seconds at each size, ms per training image with its growth, and new over old."""
    sizes = sorted(result["sizes"], key=int)
    figures = {size: result["sizes"][size] for size in sizes}
    head = " | ".join(f"{int(size):,} {version}" for size in sizes for version in ("old", "new"))
    lines = [f"| wall seconds (CPU) | {head} |", "|---" * (1 + 2 * len(sizes)) + "|"]
    for step in STEPS:
        cells = [
            (
                figures[size].get(version, {}).get("seconds", {}).get(step),
                figures[size].get(version, {}).get("cpu_seconds", {}).get(step),
            )
            for size in sizes
            for version in ("old", "new")
        ]
        if any(wall is not None for wall, _ in cells):
            lines.append(
                f"| {step} | "
                + " | ".join(short(wall) + ("" if cpu is None else f" ({short(cpu)})") for wall, cpu in cells)
                + " |"
            )
    for key, label in (
        ("files_under_data", "files under data/"),
        ("bytes_under_data", "MB under data/"),
        ("training_peak_mb", "training's peak memory, MB"),
    ):
        cells = [figures[size].get(version, {}).get(key) for size in sizes for version in ("old", "new")]
        scale = 1e6 if key == "bytes_under_data" else 1
        lines.append(
            f"| {label} | " + " | ".join("" if cell is None else f"{cell / scale:,.0f}" for cell in cells) + " |"
        )
    changes = growth(result)
    lines += [
        "",
        "| ms per training image | version | "
        + " | ".join(f"{int(size):,}" for size in sizes)
        + f" | {int(sizes[-1]):,} / {int(sizes[0]):,} |",
        "|---|---" + "|---" * (len(sizes) + 1) + "|",
    ]
    for step in STEPS:
        for version in ("old", "new"):
            costs = [figures[size].get(version, {}).get("ms_per_training_image", {}).get(step) for size in sizes]
            if all(cost is None for cost in costs):
                continue
            ratio = changes.get(version, {}).get(step, {}).get(sizes[-1])
            lines.append(
                f"| {step if version == 'old' else ''} | {version} | "
                + " | ".join(short(cost) for cost in costs)
                + f" | {'' if ratio is None else f'{ratio:.2f}'} |"
            )
    lines += [
        "",
        "| new / old | " + " | ".join(f"{int(size):,}" for size in sizes) + " |",
        "|---" * (1 + len(sizes)) + "|",
    ]
    for step in STEPS:
        cells = [figures[size].get("new_over_old", {}).get(step) for size in sizes]
        if any(cell is not None for cell in cells):
            lines.append(f"| {step} | " + " | ".join("" if cell is None else f"{cell:.2f}" for cell in cells) + " |")
    if result.get("defaults"):
        defaults = result["defaults"]
        lines += ["", "| default params, wall seconds | old | new | old / new |", "|---|---|---|---|"]
        for step in ("push", "pull"):
            old, new = defaults["old"]["seconds"][step], defaults["new"]["seconds"][step]
            lines.append(f"| `dvc {step} ingest augment` | {old:.1f} | {new:.1f} | {old / new:.1f}× |")
        ratio = defaults["old_over_new"]["push then pull"]
        files = f"{defaults['old']['files_under_data']:,} → {defaults['new']['files_under_data']:,}"
        lines.append(f"| push then pull (files under `data/`: {files}) | | | {ratio:.1f}× |")
    if result.get("article"):
        article = result["article"]
        loop = statistics.median(article["article_loop_images_per_s"])
        lines += ["", "| article's setting, augment end to end | images/s | vs the article's loop |", "|---|---|---|"]
        for name, rates in article["stage_images_per_s"].items():
            lines.append(f"| {name} | {statistics.median(rates):,.0f} | {article['ratio_to_loop'][name]:.2f}× |")
        lines.append(f"| the article's loop (ImageDataGenerator, JPEG) | {loop:,.0f} | |")
    return "\n".join(lines)


def plot(result: dict, path: Path) -> None:
    """Per-image cost against size, log-log: a colour per step, old dashed, new solid."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    sizes = sorted(result["sizes"], key=int)
    drawing, axes = plt.subplots(figsize=(8, 4.8))
    handles = []
    for number, step in enumerate(STEPS):
        colour = f"C{number}"
        for version, style, marker in (("old", "--", "o"), ("new", "-", "s")):
            points = [
                (int(size), cost)
                for size in sizes
                if (cost := result["sizes"][size].get(version, {}).get("ms_per_training_image", {}).get(step))
            ]
            if points:
                axes.plot(*zip(*points), style, marker=marker, color=colour)
        handles.append(Line2D([], [], color=colour, label=step))
    for version, style, marker in (("old", "--", "o"), ("new", "-", "s")):
        commit = result["setup"][version][:7]
        handles.append(Line2D([], [], color="grey", linestyle=style, marker=marker, label=f"{version} ({commit})"))
    axes.set_xscale("log")
    axes.set_yscale("log")
    axes.set_xticks([int(size) for size in sizes], [f"{int(size):,}" for size in sizes])
    axes.minorticks_off()
    axes.set_xlabel("training images per class (Fashion-MNIST, one seed)")
    axes.set_ylabel("ms per training image")
    axes.set_title("What each step costs per training image as the data grows")
    axes.grid(True, which="major", alpha=0.3)
    axes.legend(handles=handles, fontsize=8, loc="center left", bbox_to_anchor=(1.0, 0.5))
    drawing.tight_layout()
    drawing.savefig(path, dpi=110)
    plt.close(drawing)


def avx_flags() -> list[str]:
    """The CPU's AVX extensions, which decide the kernels oneDNN picks for training."""
    return sorted({flag for flag in Path("/proc/cpuinfo").read_text().split() if flag.startswith("avx")})


def report(result: dict) -> None:
    write_text_atomic(RESULTS, json.dumps(result, indent=2) + "\n")
    plot(result, PLOT)
    print(tables(result), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=SIZES, help="training images per class")
    parser.add_argument("--old", default=OLD, help=f"git ref of the old code (default {OLD})")
    parser.add_argument("--new", default="HEAD", help="git ref of the new code (default HEAD)")
    parser.add_argument("--no-push-pull", action="store_true", help="leave out dvc push and a fresh clone's pull")
    parser.add_argument("--noop-rounds", type=int, default=3)
    parser.add_argument(
        "--article-rounds", type=int, default=3, help="0 leaves the article's setting out (--resume: keeps its figures)"
    )
    parser.add_argument("--article-loop-copies", type=int, default=augment_stage.COPIES)
    parser.add_argument(
        "--defaults", action="store_true", help="also push and pull on the default params (3 seeds), old and new"
    )
    parser.add_argument("--report", action="store_true", help="only print the tables and redraw the plot from the JSON")
    parser.add_argument(
        "--resume", action="store_true", help="keep the sizes the JSON already has for the same commits and settings"
    )
    args = parser.parse_args()
    if args.report:
        report(json.loads(RESULTS.read_text()))
        return
    commits = {"old": resolve(args.old), "new": resolve(args.new)}
    result = {
        "machine": machine() | {"avx": avx_flags()},
        "setup": {
            "old": commits["old"],
            "new": commits["new"],
            "classes": CLASSES,
            "seed": SEED,
            "epochs": EPOCHS,
            "arm": ARM,
            "noop_rounds": args.noop_rounds,
            "push_pull": not args.no_push_pull,
        },
        "sizes": {},
    }
    if args.resume and RESULTS.exists():  # a long run stopped midway goes on where it stopped
        before = json.loads(RESULTS.read_text())
        if before["setup"] == result["setup"]:
            result["sizes"] = {size: before["sizes"][size] for size in map(str, args.sizes) if size in before["sizes"]}
            result["resumed"] = {"machine_before": before["machine"], "kept_sizes": sorted(result["sizes"], key=int)}
            for kept in ("article", "defaults"):  # kept too, unless measured again
                if kept in before and not (args.article_rounds if kept == "article" else args.defaults):
                    result[kept] = before[kept]
    scratch = Path(tempfile.mkdtemp(prefix="augflow-bench-"))
    try:
        for size in (size for size in args.sizes if str(size) not in result["sizes"]):
            result["sizes"][str(size)] = measure_size(size, commits, scratch, not args.no_push_pull, args.noop_rounds)
            result["growth"] = growth(result)
            write_text_atomic(RESULTS, json.dumps(result, indent=2) + "\n")  # what is measured so far
        if args.article_rounds:
            result["article"] = article(commits, scratch, args.article_rounds, args.article_loop_copies)
        if args.defaults:
            result["defaults"] = transfer_on_defaults(commits, scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    result["machine"]["load_average_after"] = machine()["load_average"]
    report(result)


if __name__ == "__main__":
    main()
