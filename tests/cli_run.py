"""Run one of the workspace's CLIs as a user would, and fail with its output when it fails."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

BIN = Path(sys.executable).parent
ENV = os.environ | {"OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false", "COLUMNS": "120"}


def run_cli(*args: str, cwd: Path) -> str:
    """`args[0]` is the command (tinylm-data, tinylm-train, tinylm-eval); returns its stdout."""
    done = subprocess.run(
        [str(BIN / args[0]), *args[1:]],
        cwd=cwd,
        env=ENV,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, f"{args[:2]} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout
