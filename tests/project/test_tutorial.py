"""The tutorial cannot drift from the project: every command, make target, setting, module, file and
name docs/tutorial.md shows exists, and the output it shows agrees with the one example run the docs
keep (docs/verdict.md) and with the code that prints it. Cheap: no training, no server; the one stage
run for real is the default ingest (a couple of seconds), to check the counts the tutorial prints."""

import ast
import json
import re
import shlex
import shutil
import subprocess
import sys
from functools import cache
from importlib.util import find_spec
from pathlib import Path

import pytest
import yaml

from tasks.common.errors import UserError
from tasks.common.params import Params, _models, load_params
from tasks.common.paths import PARAMS_FILE, WORKTREES_DIR
from tasks.orchestration.experiments import apply_params
from tests.helpers import PROJECT
from tests.imports import closure
from tests.project.test_docs import broken_links

TUTORIAL = PROJECT / "docs" / "tutorial.md"
VERDICT = PROJECT / "docs" / "verdict.md"
MAKEFILE = (PROJECT / "Makefile").read_text()
FENCE = re.compile(r"^```(\w*)\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)
SOURCES = "\n".join(
    path.read_text() for folder in ("tasks", "flows") for path in sorted((PROJECT / folder).rglob("*.py"))
)
DVC = Path(sys.executable).with_name("dvc")  # the environment's own, as .venv/bin/dvc
# Inline code that names nothing to check: placeholders and words of the prose.
WORDS = {"!", "...", "…", "workspace", "elusive-hare", "git", "make", "dvc", "python3"}


def blocks(text: str) -> list[tuple[str, str]]:
    """(language, body) of every fenced block."""
    return FENCE.findall(text)


def block_after(text: str, first_line: str) -> list[str]:
    """The lines of the fenced block that starts with first_line."""
    found = [body.splitlines() for _, body in blocks(text) if body.startswith(first_line)]
    assert len(found) == 1, f"one block starting with {first_line!r} expected, found {len(found)}"
    return found[0]


def inline_code(text: str) -> list[str]:
    """Every `code` span outside fenced blocks, its whitespace made single spaces."""
    return [" ".join(span.split()) for span in re.findall(r"`([^`]+)`", FENCE.sub("", text))]


def commands(text: str) -> list[str]:
    """Every line of the tutorial's sh blocks (shlex drops their comments)."""
    return [line for lang, body in blocks(text) if lang == "sh" for line in body.splitlines() if line.strip()]


def wildcard(line: str) -> re.Pattern:
    """A shown output line as a pattern: … stands for any text left out."""
    return re.compile(".*".join(re.escape(part) for part in line.split("…")))


@cache
def targets() -> set[str]:
    return set(re.findall(r"^([\w-]+):", MAKEFILE, re.MULTILINE))


@cache
def dvc_help(*subcommand: str) -> str:
    return subprocess.run([str(DVC), *subcommand, "--help"], capture_output=True, text=True, check=True).stdout


def flow_names() -> dict[str, set[str]]:
    """Prefect's 'flow/deployment' name of each deployment in prefect.yaml -> its flow's parameters."""
    names = {}
    for deployment in yaml.safe_load((PROJECT / "prefect.yaml").read_text())["deployments"]:
        module, function = deployment["entrypoint"].split(":")
        tree = ast.parse((PROJECT / module).read_text())
        flow = next(node for node in tree.body if isinstance(node, ast.FunctionDef) and node.name == function)
        name = next(
            keyword.value.value for call in flow.decorator_list for keyword in call.keywords if keyword.arg == "name"
        )
        names[f"{name}/{deployment['name']}"] = {argument.arg for argument in flow.args.args}
    return names


def serve_defaults() -> dict[str, object]:
    """flows/serve.py's argparse defaults, read from its source (no Prefect import)."""
    tree = ast.parse((PROJECT / "flows" / "serve.py").read_text())
    return {
        call.args[0].value: next(keyword.value.value for keyword in call.keywords if keyword.arg == "default")
        for call in ast.walk(tree)
        if isinstance(call, ast.Call) and getattr(call.func, "attr", "") == "add_argument"
    }


def check_setting(key: str) -> None:
    """A dotted params key the schema knows, following its models down (a policy's union included)."""
    models = [Params]
    for part in key.split("."):
        holders = [model for model in models if part in model.model_fields]
        assert holders, f"{key}: {part} is not a setting of tasks/common/params.py"
        models = [inner for model in holders for inner in _models(model.model_fields[part].annotation)]


def check_overrides(overrides: list[str], folder: Path) -> None:
    """Overrides as `dvc exp run -S` and a what-if run apply them, checked by the schema, on a copy of params.yaml."""
    shutil.copy(PROJECT / PARAMS_FILE, folder / PARAMS_FILE)
    try:
        apply_params(folder, overrides)
    except UserError as exc:
        raise AssertionError(f"the tutorial's overrides {overrides}: {exc}") from None


def check_path(token: str) -> None:
    """A file of the project, or an output its pipeline or code writes (a placeholder <...> ends the checked part)."""
    path = token.split("<")[0].rstrip("/")
    if path == ".venv" or path.startswith(".venv/"):
        assert re.search(r"^VENV := \.venv$", MAKEFILE, re.MULTILINE), "the Makefile no longer makes .venv"
        assert (Path(sys.executable).parent.parent / path.removeprefix(".venv").lstrip("/")).exists(), (
            f"{token}: not in the environment"
        )
        return
    declared = (PROJECT / "dvc.yaml").read_text() + SOURCES
    assert (PROJECT / path).exists() or path in declared, (
        f"{token}: neither a file of the project nor an output it writes"
    )


def check_command(line: str, folder: Path, experiments: set[str]) -> None:
    words = shlex.split(line.replace("<augflow's repository URL>", "URL"), comments=True)
    program, arguments = words[0], words[1:]
    if program == "make":
        assert arguments[0] in targets(), f"{line}: no target {arguments[0]} in the Makefile"
        for setting in arguments[1:]:
            assert f"$({setting.split('=')[0]})" in MAKEFILE, f"{line}: the Makefile reads no {setting.split('=')[0]}"
    elif program in ("dvc", ".venv/bin/dvc"):
        check_path(".venv/bin/dvc")
        subcommand = [word for word in arguments[:2] if not word.startswith("-")]
        help_text = dvc_help(*subcommand)
        for word in arguments[len(subcommand) :]:
            if word.startswith("-"):
                assert re.search(rf"(^|[ ,]){re.escape(word)}\b", help_text, re.MULTILINE), (
                    f"{line}: dvc {' '.join(subcommand)} has no {word}"
                )
        options = dict(zip(arguments, arguments[1:]))
        if "-S" in arguments:
            check_overrides([value for flag, value in zip(arguments, arguments[1:]) if flag == "-S"], folder)
        if "-n" in options:
            experiments.add(options["-n"])
        if subcommand == ["exp", "apply"]:
            assert arguments[-1] in experiments, f"{line}: no experiment {arguments[-1]} was made before"
    elif program == "python":
        assert arguments[0] == "-m" and find_spec(arguments[1]), f"{line}: no module {arguments[1]}"
        module_source = "".join(path.read_text() for path in closure(arguments[1]))  # a package: its __main__'s code
        for flag in (word for word in arguments[2:] if word.startswith("-")):
            assert f'"{flag}"' in module_source, f"{line}: {arguments[1]} takes no {flag}"
    elif program == "source":
        check_path(arguments[0])
    elif program == "export":
        name, _, value = arguments[0].partition("=")
        assert name in SOURCES, f"{line}: augflow sets no {name}"
        assert value == f"http://127.0.0.1:{serve_defaults()['--port']}/api", f"{line}: not make serve's API"
    elif program == "prefect":
        assert arguments[:2] == ["deployment", "run"] and arguments[2] in flow_names(), (
            f"{line}: no deployment {arguments[2]}"
        )
        for flag, value in zip(arguments, arguments[1:]):
            if flag == "--param":
                name, _, overrides = value.partition("=")
                assert name in flow_names()[arguments[2]], f"{line}: the flow takes no {name}"
                check_overrides(json.loads(overrides), folder)
    elif program == "git":
        assert arguments[0] in ("clone", "checkout"), line
        if arguments[0] == "checkout":
            check_path(arguments[1])
    elif program != "cd":
        pytest.fail(f"the tutorial shows {line!r}, which this test does not know how to check: teach it")


def check_token(token: str, folder: Path, experiments: set[str], names: set[str]) -> None:
    """One `code` span of the prose: a command, a setting, a file, or a name the project uses."""
    if token.split()[0] in ("make", "dvc", "python", "git", ".venv/bin/dvc") and " " in token:
        check_command(token, folder, experiments)
    elif re.fullmatch(r"(ingest|augment|train|evaluate|study)\.[\w.]+=.+", token):
        check_overrides([token], folder)
    elif re.fullmatch(r"(ingest|augment|train|evaluate|study)\.[\w.]+(: .+)?", token):
        check_setting(token.split(":")[0])
    elif token.startswith("--"):
        assert re.search(rf"(^|[ ,]){re.escape(token.split()[0])}\b", dvc_help("exp", "show"), re.MULTILINE), token
    elif token.strip("[]") in names or token in experiments or token in WORDS:
        pass
    elif token in MAKEFILE or token in SOURCES:  # a package, a message, an archive's suffix
        pass
    else:
        check_path(token)


@pytest.fixture(scope="module")
def tutorial() -> str:
    return TUTORIAL.read_text()


@pytest.fixture(scope="module")
def example() -> list[str]:
    """The default run's output as docs/verdict.md shows it, the one place that keeps it."""
    return block_after(VERDICT.read_text(), "augmented vs original:")


def test_every_command_of_the_tutorial_exists(tutorial, tmp_path):
    experiments: set[str] = set()
    for line in commands(tutorial):
        check_command(line, tmp_path, experiments)
    assert {"defaults", "copies-5"} <= experiments


def test_every_name_the_tutorial_shows_exists(tutorial, tmp_path):
    """Settings, files, stage, arm and deployment names in the prose, and the params.yaml it has you write."""
    experiments = {
        option for line in commands(tutorial) for flag, option in zip(line.split(), line.split()[1:]) if flag == "-n"
    }
    dvc_yaml = yaml.safe_load((PROJECT / "dvc.yaml").read_text())
    arms = Params.model_fields["train"].annotation.model_fields["arms"].annotation
    names = {*dvc_yaml["stages"], *re.findall(r"'(\w+)'", str(arms))}
    names |= {name.split("/")[1] for name in flow_names()} | set().union(
        *flow_names().values()
    )  # deployments, flow parameters
    names |= set(re.findall(r'key="([\w-]+)"', SOURCES))  # the flow's artifacts
    for token in inline_code(tutorial):
        check_token(token, tmp_path, experiments, names)
    for lang, body in blocks(tutorial):
        if lang == "yaml":
            check_overrides(
                [
                    f"{group}.{key}={value}"
                    for group, values in yaml.safe_load(body).items()
                    for key, value in values.items()
                ],
                tmp_path,
            )


def test_the_tutorial_links_resolve_and_so_do_the_benchmarks_log():
    assert broken_links(TUTORIAL) == []
    assert broken_links(PROJECT / "benchmarks" / "README.md") == []


def test_the_verdict_shown_is_the_example_run_line_for_line(tutorial, example):
    """The tutorial abridges inside lines (…) but shows every line, and each agrees with docs/verdict.md."""
    shown = block_after(tutorial, "python -m tasks.evaluate --show")[1:]
    assert len(shown) == len(example)
    for line, full in zip(shown, example):
        assert wildcard(line).fullmatch(full), f"docs/tutorial.md shows {line!r} where docs/verdict.md has {full!r}"


def test_the_readme_table_is_the_example_runs(example):
    readme = (PROJECT / "README.md").read_text()
    table = [line for line in readme.splitlines() if line.startswith("|")]
    assert table == [line for line in example if line.startswith("|")]


def test_the_experiments_table_keeps_what_the_command_asks_for(tutorial):
    """dvc exp show's columns under the tutorial's --keep (matched from the start, as DVC does), and the defaults row
    from the example run's headline numbers (docs/verdict.md's reports/headline.json, rounded as there)."""
    command = next(line for line in commands(tutorial) if line.startswith("dvc exp show"))
    keep = shlex.split(command)[shlex.split(command).index("--keep") + 1]
    headline = json.loads(re.search(r"```json\n(.*?)```", VERDICT.read_text(), re.DOTALL).group(1))
    metrics = [f"{group}.{key}" for group, values in headline.items() for key in values]
    params = yaml.safe_load((PROJECT / PARAMS_FILE).read_text())

    def flat(tree: dict, prefix: str = "") -> list[str]:
        return [
            name
            for key, value in tree.items()
            for name in (flat(value, f"{prefix}{key}.") if isinstance(value, dict) else [f"{prefix}{key}"])
        ]

    table = block_after(tutorial, "  Experiment")
    assert table[0].split() == [column for column in ["Experiment", *metrics, *flat(params)] if re.match(keep, column)]
    rows = {
        re.search(r"\[([\w-]+)\]|^\s*(\w+)", row).group(1) or row.split()[0]: row.split()[-len(table[0].split()) + 1 :]
        for row in table[1:]
    }
    kept = table[0].split()[1:]
    defaults = dict(zip(kept, rows["defaults"]))
    for column, value in defaults.items():
        group, key = column.split(".")
        expected = headline.get(group, {}).get(key) if group in headline else params[group][key]
        assert value == (f"{expected:.3f}" if isinstance(expected, float) else str(expected)), column
    assert (
        dict(zip(kept, rows["copies-5"]))["augment.copies"]
        == "5"
        == dict(zip(kept, rows["workspace"]))["augment.copies"]
    )
    assert dict(zip(kept, rows["main"]))["augment.copies"] == str(params["augment"]["copies"])


def test_what_make_run_prints_is_what_the_default_pipeline_does(tutorial, tmp_path, capsys):
    """The counts in the shown output of make run and of the copies experiment, from the real ingest on the defaults,
    the pipeline's stages as DVC reads them, and params.yaml."""
    from tasks.ingest.stage import ingest
    from tasks.orchestration.parallel import pipeline_stages

    params = load_params(PROJECT / PARAMS_FILE)
    if not Path(params.ingest.source, "train-labels-idx1-ubyte.gz").exists():
        pytest.skip(f"Fashion-MNIST is not installed in {params.ingest.source}")
    counts = ingest(
        params.ingest, tmp_path / "raw", tmp_path / "sets", tmp_path / "report.json", seeds=params.train.seeds
    )
    printed = capsys.readouterr().out.strip()
    shown = block_after(tutorial, "test -x .venv/bin/python")
    assert f"[ingest] {printed}" in shown
    copies, originals = params.augment.copies, counts["train"]
    assert (
        f"[augment] augment: {originals * copies} copies of {originals} training images in data/augmented "
        f"({originals * copies} made, 0 kept)" in shown
    )
    per_epoch = params.ingest.train_per_class * len(params.ingest.classes)
    for arm, images in (("original", per_epoch), ("augmented", per_epoch * (1 + copies))):
        assert any(
            wildcard(line).fullmatch(
                f"[train@{arm}-0] train: {arm} seed 0, {images} images per epoch, 9 s -> models/{arm}/seed-0.keras"
            )
            for line in shown
        ), arm
    stages = len(pipeline_stages(PROJECT))
    assert any(
        re.fullmatch(rf"parallel: {stages} of {stages} stages ran, at most \d+ at once\.", line) for line in shown
    )
    fewer = block_after(tutorial, "Reproducing experiment 'copies-5'")
    assert (
        f"augment: {originals * 5} copies of {originals} training images in data/augmented "
        f"(0 made, {originals * 5} kept)" in fewer
    )


def test_what_make_serve_prints_names_its_defaults(tutorial):
    defaults, shown = serve_defaults(), block_after(tutorial, "augflow: Prefect UI")[0]
    assert (
        f"http://127.0.0.1:{defaults['--port']}," in shown
        and f"http://127.0.0.1:{defaults['--reports-port']};" in shown
    )
    assert f"({defaults['--nightly-cron']}, {defaults['--nightly-timezone']})" in shown
    assert set(re.findall(r"'([\w-]+/[\w-]+)'", shown)) == set(flow_names())
    log = "\n".join(block_after(tutorial, "… | INFO"))
    assert str(WORKTREES_DIR) in log and "Saved DVC experiment" in SOURCES and "What-if run" in SOURCES


def test_a_wrong_name_in_a_tutorial_is_caught(tmp_path):
    """The checks fail on what does not exist."""
    for bad in ("make runn", "dvc exp run -S train.epoch=2", "python -m tasks.evaluat", "dvc exp show --kep x"):
        with pytest.raises(AssertionError):
            check_command(bad, tmp_path, set())
    for bad in ("train.epoch", "reports/nowhere.json"):
        with pytest.raises(AssertionError):
            check_token(bad, tmp_path, set(), set())
    with pytest.raises(AssertionError):
        test_the_verdict_shown_is_the_example_run_line_for_line(
            "```\npython -m tasks.evaluate --show\nrepeated hurts …\n```\n", ["repeated improves by 4.2"]
        )
