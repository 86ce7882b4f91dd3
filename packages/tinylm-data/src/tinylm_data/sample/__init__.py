"""The embedded bilingual sample: four small corpora in their real source formats.

The text was written for TinyLM and composed by tools/make_sample.py, which recreates these
files byte for byte. `sample.yaml` is the build configuration (`tinylm-data build --source
sample`); `planted.json` lists every duplicate, junk pattern, short, empty and bad record that was
planted, with its file and line, so tests can assert what each stage must remove.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

__all__ = ["planted", "sample_config", "sample_dir"]


def sample_dir() -> Path:
    """The folder holding the sample's data files, sample.yaml and planted.json."""
    root = resources.files(__name__)
    if not isinstance(root, Path):
        raise RuntimeError(f"tinylm_data.sample must be installed as plain files, found {root!r}")
    return root


def sample_config() -> Path:
    """The sample's build configuration; the paths in it are relative to its folder."""
    return sample_dir() / "sample.yaml"


def planted() -> dict[str, Any]:
    """What was planted in the sample (the content of planted.json)."""
    return json.loads((sample_dir() / "planted.json").read_text(encoding="utf-8"))
