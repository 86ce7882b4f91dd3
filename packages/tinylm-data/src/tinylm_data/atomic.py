"""Writing files so that a reader never sees a partial one: temporary name, fsync, rename."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tinylm_shards.files import TMP_SUFFIX, atomic_path

__all__ = ["TMP_SUFFIX", "atomic_path", "remove_temporaries", "write_json", "write_text"]


def write_json(path: Path, data: Any) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False, sort_keys=False) + "\n")


def write_text(path: Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def remove_temporaries(directory: Path) -> int:
    """Delete temporary files a killed run left behind; returns how many."""
    if not directory.exists():
        return 0
    stale = [p for p in directory.rglob(f"*{TMP_SUFFIX}") if p.is_file()]
    for p in stale:
        p.unlink()
    return len(stale)
