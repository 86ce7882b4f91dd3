"""The declared dependencies (extras included) are exactly the distributions src/ imports (stdlib and
itself aside)."""

import ast
import sys
import tomllib
from importlib.metadata import PackageNotFoundError, distribution, packages_distributions
from pathlib import Path

from packaging.requirements import Requirement

PACKAGE = Path(__file__).resolve().parents[1]


def imported_modules() -> set[str]:
    found = set()
    for path in (PACKAGE / "src").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                found |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.add(node.module.split(".")[0])
    return found - set(sys.stdlib_module_names) - {"__future__", "tinylm_eval"}


def _distribution_named(name: str) -> list[str]:
    try:
        return [distribution(name).metadata["Name"]]
    except PackageNotFoundError:
        return []


def test_every_import_is_declared_and_every_declaration_imported():
    project = tomllib.loads((PACKAGE / "pyproject.toml").read_text())["project"]
    extras = {
        Requirement(r).name.lower().replace("_", "-")
        for group in project.get("optional-dependencies", {}).values()
        for r in group
    }
    declared = {Requirement(r).name.lower().replace("_", "-") for r in project["dependencies"]}
    owners = packages_distributions()
    imported = set()
    for module in imported_modules():
        # why: an editable install (the workspace's own packages) maps no top-level module.
        dists = owners.get(module) or _distribution_named(module.replace("_", "-"))
        if not dists and module.replace("_", "-") in extras:
            imported.add(module.replace("_", "-"))  # an extra this environment did not install
            continue
        assert dists, f"{module} is imported but no installed distribution provides it"
        imported.add(dists[0].lower().replace("_", "-"))
    assert imported == declared | extras, (
        f"imported, not declared: {sorted(imported - declared - extras)}; "
        f"declared, not imported: {sorted(declared | extras - imported)}"
    )
