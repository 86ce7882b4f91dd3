"""Import every module of one installed package; run in an environment holding only that package.

    python tools/import_all.py tinylm_data

A module may fail to import only for want of a distribution the package declares as an optional
extra (pyspark for tinylm-data's Spark engine, for example); any other import error fails.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
import sys
from importlib.metadata import distribution


def extra_modules(package: str) -> set[str]:
    """Top-level module names that the package's optional extras would provide."""
    meta = distribution(package.replace("_", "-")).metadata
    names = {
        re.match(r"[A-Za-z0-9._-]+", requirement).group(0)
        for requirement in meta.get_all("Requires-Dist") or []
        if "extra ==" in requirement
    }
    # Not installed here, so no installed metadata maps them: the module is usually the name.
    return {name.lower().replace("-", "_") for name in names}


def main(package: str) -> int:
    root = importlib.import_module(package)
    optional = extra_modules(package)
    failures, skipped, imported = [], [], 0
    for info in pkgutil.walk_packages(root.__path__, prefix=f"{package}."):
        if info.name.endswith(".__main__"):  # importing it runs the CLI
            continue
        try:
            importlib.import_module(info.name)
            imported += 1
        except ModuleNotFoundError as error:
            missing = (error.name or "").split(".")[0]
            (skipped if missing in optional else failures).append(f"{info.name}: {error}")
    for line in skipped:
        print(f"  needs an optional extra: {line}")
    for line in failures:
        print(f"  FAILED: {line}", file=sys.stderr)
    print(
        f"{package}: {imported} modules imported, {len(skipped)} need an extra, {len(failures)} failed"
    )
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
