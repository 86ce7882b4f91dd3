"""Print the root pyproject's exact pins as a pip constraints file (for standalone installs)."""

import tomllib
from pathlib import Path

root = Path(__file__).resolve().parents[1]
pins = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["uv"]["constraint-dependencies"]
print("\n".join(pins))
