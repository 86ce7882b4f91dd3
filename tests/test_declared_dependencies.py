"""Each package declares exactly the distributions its src/ imports (stdlib and itself aside).

CI also installs each package's wheel alone and imports every module there
(`tools/import_all.py`); this test is the static half, which also sees imports made inside functions.
"""

import ast
import sys
import tomllib
from importlib.metadata import PackageNotFoundError, distribution, packages_distributions
from pathlib import Path

import pytest
from packaging.requirements import Requirement

PACKAGES = sorted((Path(__file__).resolve().parents[1] / "packages").glob("tinylm-*"))
# Declared for what another library loads on the package's behalf, never imported by name.
USED_WITHOUT_IMPORT = {
    "tinylm-train": {
        "deepspeed",  # transformers' Trainer loads it for parallelism.deepspeed
        "tensorboard",  # the Trainer writes TensorBoard logs (report_to)
    },
}


def imported_modules(package: Path) -> set[str]:
    found = set()
    for path in (package / "src").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                found |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.add(node.module.split(".")[0])
    own = package.name.replace("-", "_")
    return found - set(sys.stdlib_module_names) - {"__future__", own}


def normalised(name: str) -> str:
    return name.lower().replace("_", "-")


def distribution_of(module: str, owners: dict[str, list[str]]) -> str:
    # why: an editable install (the workspace's own packages) maps no top-level module.
    dists = owners.get(module)
    if not dists:
        try:
            dists = [distribution(module.replace("_", "-")).metadata["Name"]]
        except PackageNotFoundError:
            pytest.fail(f"{module} is imported but no installed distribution provides it")
    return normalised(dists[0])


@pytest.mark.parametrize("package", PACKAGES, ids=lambda p: p.name)
def test_every_import_is_declared_and_every_declaration_imported(package):
    project = tomllib.loads((package / "pyproject.toml").read_text())["project"]
    required = {normalised(Requirement(r).name) for r in project["dependencies"]}
    extras = {
        normalised(Requirement(r).name)
        for group in project.get("optional-dependencies", {}).values()
        for r in group
    }
    owners = packages_distributions()
    imported = {distribution_of(m, owners) for m in imported_modules(package)}
    assert imported - required - extras == set(), "imported, not declared"
    unused = required - imported - USED_WITHOUT_IMPORT.get(package.name, set())
    assert unused == set(), "declared, not imported"
    assert extras - imported == set(), "declared as an extra, not imported"
