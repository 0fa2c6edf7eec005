"""`make decide`: add seeds in rounds until every comparison named in params.yaml is decided, or the budget is spent.

The stopping rule is tasks/decide/sequential.py's, its design fixed from params.yaml before the first look:
looks at decide.first_seeds, then every decide.round_seeds more, up to decide.max_seeds; the
level is 1 - evaluate.confidence, the margin evaluate.equivalence_margin. Each round writes the
seeds it needs into params.yaml's train.seeds and reproduces the pipeline, so DVC trains only
the new seeds' runs and params.yaml ends holding the seeds used: `dvc repro` afterwards reruns
nothing, and a colleague's clone gives the same verdict. reports/decide.json and
reports/decide.md record the design, every look and why it stopped.
"""

import argparse
import json
import sys
import time
from collections.abc import Callable
from dataclasses import asdict
from io import StringIO
from pathlib import Path

from ruamel.yaml import YAML

from tasks.common.errors import UserError
from tasks.common.files import write_text_atomic
from tasks.common.params import Params, load_params
from tasks.common.paths import DECIDE_JSON, DECIDE_MD, METRICS, PARAMS_FILE
from tasks.common.results import Metrics, read_result
from tasks.decide.sequential import Design, Look, history, markdown, points
from tasks.orchestration.lock import holding
from tasks.orchestration.parallel import StageFailed, default_jobs, reproduce

Log = Callable[[str], None]


def design_of(params: Params) -> Design:
    """The sequential design params.yaml fixes before the first look."""
    settings = params.decide
    return Design.plan(
        start=settings.first_seeds,
        round_seeds=settings.round_seeds,
        max_seeds=settings.max_seeds,
        alpha=1 - params.evaluate.confidence,
        margin=params.evaluate.equivalence_margin / 100,
        comparisons=len(settings.comparisons),
        spending=settings.spending,
    )


def comparison_name(treated: str, control: str) -> str:
    return f"{treated} vs {control}"


def check_comparisons(params: Params) -> None:
    for treated, control in params.decide.comparisons:
        missing = [arm for arm in (treated, control) if arm not in params.arms]
        if missing:
            raise UserError(
                f"params.yaml: decide.comparisons names {', '.join(missing)}, which train.arms does not train: "
                "add it to train.arms or remove that comparison."
            )


def seed_order(seeds: list[int], count: int) -> list[int]:
    """The first `count` seeds: train.seeds as listed, then the smallest seeds not yet used."""
    order, candidate = list(seeds), 0
    while len(order) < count:
        if candidate not in order:
            order.append(candidate)
        candidate += 1
    return order[:count]


def write_seeds(seeds: list[int], path: Path = PARAMS_FILE) -> None:
    """Set train.seeds in params.yaml, keeping its comments and layout."""
    yaml = YAML()
    yaml.preserve_quotes = True
    yaml.width = 4096
    yaml.representer.add_representer(
        type(None), lambda self, _: self.represent_scalar("tag:yaml.org,2002:null", "null")
    )
    document = yaml.load(path.read_text())
    document["train"]["seeds"][:] = seeds  # the list itself changes, so its style and the comment after it stay
    text = StringIO()
    yaml.dump(document, text)
    write_text_atomic(path, text.getvalue())


def differences(metrics: Metrics, treated: str, control: str, seeds: list[int]) -> list[float]:
    """treated - control test accuracy per seed, in the order the seeds were added."""
    accuracy = {
        arm: dict(zip(metrics.arms[arm].test_accuracy.seeds, metrics.arms[arm].test_accuracy.runs))
        for arm in (treated, control)
    }
    return [accuracy[treated][seed] - accuracy[control][seed] for seed in seeds]


def look_record(item: Look) -> dict:
    record = asdict(item)
    record["boundary"] = asdict(item.boundary)
    return record


def summary_lines(looks: dict[str, list[Look]]) -> list[str]:
    lines = []
    for name, made in looks.items():
        last = made[-1]
        lines.append(
            f"{name}: {last.decision} at {last.seeds} seeds "
            f"({100 * last.mean:+.1f} points, repeated CI {points(last.interval)}; {last.reason})."
        )
    return lines


def write_decision(project: Path, record: dict, looks: dict[str, list[Look]], design: Design) -> None:
    write_text_atomic(project / DECIDE_JSON, json.dumps(record, indent=2) + "\n")
    sections = [f"# Decide: seeds added until decided\n\n{record['stopped']}\n"]
    sections += [f"## {name}\n\n{markdown(design, made)}" for name, made in looks.items()]
    sections.append(
        f"Seeds used: {', '.join(map(str, record['seeds']))}; wall time {record['seconds'] / 60:.1f} min.\n"
    )
    write_text_atomic(project / DECIDE_MD, "\n".join(sections))


def decide(
    project: Path,
    run_round: Callable[[], None],
    on_look: Callable[[int, dict[str, list[Look]], list[str]], None] | None = None,
    log: Log = print,
) -> dict:
    """Run the rounds in project; run_round reproduces its pipeline on its params.yaml. on_look hears each look:
    its number, every comparison's looks so far and the comparisons still open."""
    params = load_params(project / PARAMS_FILE)
    check_comparisons(params)
    design = design_of(params)
    names = {comparison_name(*pair): tuple(pair) for pair in params.decide.comparisons}
    looks: dict[str, list[Look]] = {name: [] for name in names}
    started, rounds_seconds, seeds = time.monotonic(), [], []
    stopped = ""
    for k, count in enumerate(design.looks, start=1):
        seeds = seed_order(params.train.seeds, count)
        budget = params.decide.max_hours
        if k > 1 and budget is not None and rounds_seconds:
            per_seed = sum(rounds_seconds) / design.looks[k - 2]
            expected = time.monotonic() - started + per_seed * (count - design.looks[k - 2])
            if expected > budget * 3600:
                stopped = f"Stopped before look {k}: its round would end after decide.max_hours ({budget:g} h)."
                seeds = seeds[: design.looks[k - 2]]
                break
        round_started = time.monotonic()
        if load_params(project / PARAMS_FILE).train.seeds != seeds:
            write_seeds(seeds, project / PARAMS_FILE)
        log(f"decide: look {k} of {len(design.looks)} at {count} seeds ({', '.join(map(str, seeds))})")
        run_round()
        rounds_seconds.append(time.monotonic() - round_started)
        metrics = read_result(project / METRICS, Metrics)
        for name, (treated, control) in names.items():
            if not looks[name] or looks[name][-1].decision == "continue":
                looks[name] = history(design, differences(metrics, treated, control, seeds))
        still_open = [name for name, made in looks.items() if made[-1].decision == "continue"]
        for line in summary_lines({name: made for name, made in looks.items() if made[-1].look == k}):
            log(f"decide: {line}")
        if on_look:
            on_look(k, looks, still_open)
        if not still_open:
            stopped = f"Every comparison was decided by look {k} ({count} seeds)."
            break
    else:
        stopped = f"The last planned look ({design.looks[-1]} seeds) was made; what is still undecided is inconclusive."
    record = {
        "design": asdict(design) | {"boundaries": [asdict(boundary) for boundary in design.boundaries]},
        "seeds": seeds,
        "stopped": stopped,
        "seconds": round(time.monotonic() - started, 1),
        "comparisons": {
            name: {
                "treated": names[name][0],
                "control": names[name][1],
                "decision": made[-1].decision if made else None,
                "looks": [look_record(item) for item in made],
            }
            for name, made in looks.items()
        },
    }
    write_decision(project, record, looks, design)
    log(f"decide: {stopped} Seeds used: {', '.join(map(str, seeds))}. Report: {DECIDE_MD}")
    return record


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=None, help="stages at once (default: the usable cores)")
    jobs = parser.parse_args().jobs or default_jobs()
    project = Path.cwd()
    try:
        with holding(project, "python -m tasks.decide"):
            decide(project, lambda: reproduce(project, jobs))
    except StageFailed as exc:
        print(f"augflow: {exc}", file=sys.stderr)
        sys.exit(1)
