"""Crash points for the kill-and-resume tests.

`TINYLM_DATA_CRASH_AT=<point>:<n>` makes the process kill itself (SIGKILL, like an out-of-memory
kill or a lost node) the n-th time it passes `point`. Unset, this costs one dictionary lookup.
"""

from __future__ import annotations

import os
import signal

_counts: dict[str, int] = {}


def crash_point(point: str) -> None:
    spec = os.environ.get("TINYLM_DATA_CRASH_AT")
    if not spec:
        return
    name, _, count = spec.partition(":")
    if name != point:
        return
    _counts[point] = _counts.get(point, 0) + 1
    if _counts[point] >= int(count or 1):
        os.kill(os.getpid(), signal.SIGKILL)
