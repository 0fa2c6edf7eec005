"""The project modules a command imports, transitively, read from the code (no import is run)."""

import ast
from pathlib import Path

from tests.helpers import PROJECT

PACKAGES = ("tasks", "flows")


def module_file(name: str, root: Path = PROJECT) -> Path | None:
    """The file of a project module or package, or None if the name is not the project's."""
    if name.split(".")[0] not in PACKAGES:
        return None
    base = root.joinpath(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def imported_names(path: Path) -> set[str]:
    """Every module name an import statement in the file names, with the parent packages Python imports first."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)  # `from package import module`
    return {".".join(name.split(".")[: depth + 1]) for name in names for depth in range(name.count(".") + 1)}


def closure(module: str, root: Path = PROJECT) -> set[Path]:
    """The project files `python -m module` runs: the module (its __main__ for a package) and everything it imports."""
    start = module_file(module, root)
    if start is not None and start.name == "__init__.py":
        start = start.parent / "__main__.py"
    parents = [".".join(module.split(".")[: depth + 1]) for depth in range(module.count("."))]
    seen: set[Path] = set()
    pending = [start, *(module_file(name, root) for name in parents)]
    while pending:
        path = pending.pop()
        if path is None or path in seen:
            continue
        seen.add(path)
        pending.extend(module_file(name, root) for name in imported_names(path))
    return seen
