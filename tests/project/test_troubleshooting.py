"""docs/troubleshooting.md cannot drift: every message it quotes is still one the code prints.

A quoted message is every line of the page's ```text blocks. It must match a message template
of augflow's code (tasks/, flows/, the Makefile's echo lines) or of the tool that prints it (DVC,
Prefect, pydantic), each placeholder standing for any value. A template with little fixed text of
its own (`augflow: {exc}`, `{path}: {problems}.`) only frames: the sentences its placeholders
stand for must themselves match templates.
"""

import ast
import functools
import importlib.util
import re
from pathlib import Path
from typing import get_args

import pytest
from pydantic_core import PydanticKnownError
from pydantic_core.core_schema import ErrorType

from tests.helpers import PROJECT

PAGE = PROJECT / "docs" / "troubleshooting.md"
OWN_SOURCES = [*sorted((PROJECT / "tasks").rglob("*.py")), *sorted((PROJECT / "flows").glob("*.py"))]
TOOL_SOURCES = {  # the files of the tools augflow runs that hold the messages the page quotes
    "dvc": ["lock.py", "repo/reproduce.py", "stage/exceptions.py"],
    "prefect": ["client/orchestration/__init__.py", "cli/server.py"],
    "anyio": ["_core/_sockets.py"],
}
PREFIXES = ("ERROR: ", "RuntimeError: ", "httpx.ConnectError: ")  # DVC's logger; a traceback's last line
FRAMES_ONLY = 20  # fixed characters below which a template only frames other sentences
PLACEHOLDER = re.compile(r"\{[^{}]*\}|%[sdr]")  # str.format and logging placeholders in a plain string


class Template:
    """A message with placeholders, as a regular expression; `fixed` counts its characters of its own."""

    def __init__(self, parts: list[str | None], fixed: int, pieces: list[str]):  # regexes, or None for a placeholder
        self.fixed, self.pieces = (
            fixed,
            sorted((piece for piece in pieces if piece), key=len, reverse=True),
        )  # to rule it out fast
        self.regex = re.compile("".join("(.+?)" if part is None else part for part in parts), re.DOTALL)

    @classmethod
    def from_text(cls, text: str, placeholder: re.Pattern = PLACEHOLDER) -> "Template":
        pieces = placeholder.split(text)
        parts = [re.escape(pieces[0])]
        for piece in pieces[1:]:
            parts += [None, re.escape(piece)]
        return cls(parts, sum(map(len, pieces)), pieces)


def constant_dicts(tree: ast.Module) -> dict[str, list[str]]:
    """Module-level NAME = {key: "text", ...}: what a placeholder NAME[key] can print."""
    found = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Dict) and len(node.targets) == 1:
            values = [value.value for value in node.value.values if isinstance(value, ast.Constant)]
            if values and all(isinstance(value, str) for value in values) and isinstance(node.targets[0], ast.Name):
                found[node.targets[0].id] = values
    return found


def python_templates(path: Path) -> list[Template]:
    tree = ast.parse(path.read_text())
    dicts, templates = constant_dicts(tree), []
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr):
            parts = []
            for value in node.values:
                if isinstance(value, ast.Constant):
                    parts.append(re.escape(value.value))
                    continue
                looked_up = value.value
                if (
                    isinstance(looked_up, ast.Subscript)
                    and isinstance(looked_up.value, ast.Name)
                    and looked_up.value.id in dicts
                ):
                    parts.append(f"(?:{'|'.join(map(re.escape, dicts[looked_up.value.id]))})")  # checked, not free
                else:
                    parts.append(None)
            texts = [value.value for value in node.values if isinstance(value, ast.Constant)]
            templates.append(Template(parts, sum(map(len, texts)), texts))
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and len(node.value) > 1:
            templates.append(Template.from_text(node.value))
    return templates


def makefile_templates(path: Path) -> list[Template]:
    """The Makefile's echo lines, its shell and make variables as placeholders."""
    variable = re.compile(r"\$\$\w+|\$\$?\([^)]*\)")
    return [Template.from_text(text, variable) for text in re.findall(r'echo "([^"]*)"', path.read_text())]


def tool_file(package: str, relative: str) -> Path:
    return Path(importlib.util.find_spec(package).submodule_search_locations[0]) / relative


def pydantic_templates() -> list[Template]:
    """pydantic's own wording of a bad value, which a params.yaml message quotes."""
    context = {key: 0 for key in ("ge", "gt", "le", "lt", "min_length", "max_length", "actual_length", "multiple_of")}
    templates = []
    for error_type in get_args(ErrorType):
        try:
            templates.append(Template.from_text(PydanticKnownError(error_type, context).message_template))
        except (TypeError, KeyError, ValueError):
            continue  # a type that needs another context: not one a bad number, string or list meets
    return templates


@functools.cache
def templates() -> tuple[Template, ...]:
    found = [template for path in OWN_SOURCES for template in python_templates(path)]
    found += makefile_templates(PROJECT / "Makefile")
    found += [
        template
        for package, files in TOOL_SOURCES.items()
        for name in files
        for template in python_templates(tool_file(package, name))
    ]
    found = [template for template in found + pydantic_templates() if template.fixed]  # `{}` alone frames nothing
    return tuple(sorted(found, key=lambda template: -template.fixed))  # the most specific first


@functools.cache
def printed_by_the_code(message: str, frames: int = 3) -> bool:
    """Whether a template matches the message: fixed text enough of its own, or its sentences matched in turn
    (at most `frames` framing templates deep)."""
    if any(
        message.startswith(prefix) and printed_by_the_code(message.removeprefix(prefix), frames) for prefix in PREFIXES
    ):
        return True
    for template in templates():
        if template.fixed < FRAMES_ONLY and not frames:
            break
        if template.pieces[0] not in message or not all(piece in message for piece in template.pieces[1:]):
            continue
        match = template.regex.fullmatch(message)
        if not match:
            continue
        if template.fixed >= FRAMES_ONLY:
            return True
        sentences = [value for value in match.groups() if " " in value]  # a value without a space is a name or a number
        if sentences and all(
            len(value) < len(message) and printed_by_the_code(value, frames - 1) for value in sentences
        ):
            return True
    return False


def quoted_messages(page: str) -> list[str]:
    blocks = re.findall(r"^```text\n(.*?)^```", page, re.MULTILINE | re.DOTALL)
    return [line for block in blocks for line in block.splitlines() if line.strip()]


@pytest.mark.parametrize("message", quoted_messages(PAGE.read_text()), ids=lambda message: message[:60])
def test_every_quoted_message_is_one_the_code_prints(message):
    assert printed_by_the_code(message), f"docs/troubleshooting.md quotes a message no code prints: {message}"


def test_the_page_quotes_a_message_for_each_problem():
    page = PAGE.read_text()
    sections = re.split(r"^## ", page, flags=re.MULTILINE)[1:]
    assert len(sections) >= 9
    for section in sections:
        title = section.splitlines()[0]
        assert quoted_messages(section) or "<!-- setup-message -->" in section, f"section {title!r} quotes no message"


@pytest.mark.parametrize(
    "invented",
    [
        # a changed ending
        "augflow: params.yaml: train.epoch is not a known setting: did you mean train.epochs? Delete it.",
        "augflow: /home/me/augflow is locked by another run; try again later.",  # never worded so
        (
            "augflow: could not write data/raw: the disk is quite full; "
            "free space on it, or move the project to a larger disk, and rerun."
        ),
        "augflow: stage ingest went wrong",
        "ERROR: Unable to get the lock.",
    ],
)
def test_a_message_the_code_does_not_print_is_caught(invented):
    assert not printed_by_the_code(invented)


def test_messages_with_their_values_filled_in_are_recognised():
    assert printed_by_the_code(
        "augflow: could not write models/augmented/seed-0.keras: the disk quota is used up; "
        "free space within it and rerun."
    )
    assert printed_by_the_code(
        "augflow: params.yaml: train.seeds.1: Input should be greater than or equal to 0 (got -1)."
    )
