"""The glibc settings are checked in fresh processes: malloc's state is process-wide."""

import subprocess
import sys
import textwrap

import pytest

from tinylm_eval.cpu_allocator import _glibc

PROBE = textwrap.dedent(
    """
    import ctypes, json, sys
    from tinylm_eval.cpu_allocator import keep_freed_memory

    class MallInfo2(ctypes.Structure):
        _fields_ = [(name, ctypes.c_size_t) for name in (
            "arena", "ordblks", "smblks", "hblks", "hblkhd",
            "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]

    libc = ctypes.CDLL("libc.so.6")
    libc.mallinfo2.restype = MallInfo2
    libc.malloc.restype = ctypes.c_void_p
    libc.free.argtypes = [ctypes.c_void_p]
    applied = keep_freed_memory() if sys.argv[1] == "tuned" else None
    before = libc.mallinfo2()
    buffer = libc.malloc(24 * 2**20)
    during = libc.mallinfo2()
    libc.free(buffer)
    after = libc.mallinfo2()
    print(json.dumps({
        "applied": applied,
        "mapped": during.hblkhd - before.hblkhd,
        "heap_used": during.uordblks - before.uordblks,
        "heap_trimmed": during.arena - after.arena,
    }))
    """
)


def _probe(mode: str) -> dict:
    import json

    done = subprocess.run(
        [sys.executable, "-c", PROBE, mode], capture_output=True, text=True, check=True
    )
    return json.loads(done.stdout)


@pytest.mark.skipif(
    _glibc() is None or not hasattr(_glibc(), "mallinfo2"), reason="needs glibc >= 2.33"
)
def test_a_freed_24_mib_buffer_stays_in_the_heap_only_when_tuned():
    default = _probe("default")
    assert default["mapped"] >= 24 * 2**20  # glibc's own choice: a fresh mapping
    tuned = _probe("tuned")
    assert tuned["applied"] is True
    assert tuned["mapped"] == 0
    assert tuned["heap_used"] >= 24 * 2**20  # served from the heap
    assert tuned["heap_trimmed"] == 0  # freed, not handed back: the next batch reuses it


def test_other_platforms_are_left_alone(monkeypatch):
    import tinylm_eval.cpu_allocator as allocator

    monkeypatch.setattr(allocator.sys, "platform", "darwin")
    assert allocator.keep_freed_memory() is False
