"""Crash points for the kill-and-resume tests, and failure points for the error-path tests.

`TINYLM_DATA_CRASH_AT=<point>:<n>` kills the build (SIGKILL, like an out-of-memory kill or a
lost node) the n-th time a process passes `point`; a build worker kills its parent, the build,
first. `TINYLM_DATA_FAIL_AT=<point>` raises `InjectedFault` there instead. Unset, each costs
one dictionary lookup.
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


class InjectedFault(RuntimeError):
    """Raised at a failure point named by TINYLM_DATA_FAIL_AT."""


def fail_point(point: str) -> None:
    if os.environ.get("TINYLM_DATA_FAIL_AT") == point:
        raise InjectedFault(f"injected fault at {point}")
