"""Crash points for the kill-and-resume tests.

`TINYLM_DATA_CRASH_AT=<point>:<n>` kills the build (SIGKILL, like an out-of-memory kill or a
lost node) the n-th time a process passes `point`; a build worker kills its parent, the build,
first. Unset, this costs one dictionary lookup.
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
        import multiprocessing

        if multiprocessing.parent_process() is not None:
            os.kill(os.getppid(), signal.SIGKILL)
        os.kill(os.getpid(), signal.SIGKILL)
