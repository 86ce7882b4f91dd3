"""Orders the test files so the slowest start first.

Two xdist workers take one file at a time (`--dist loadfile`) in collection order
(`--no-loadscope-reorder`); a file that takes minutes and starts last leaves the other worker idle
until it ends. Starting the longest files first (longest-processing-time-first) lets the many short
files fill in beside them. The list holds the files that took 150 s or more in one
`uv run pytest --durations=0` run on a loaded 2-core machine (setup, call and teardown summed per
file), slowest first; other files with a `slow` test come next, then the rest as collected.
"""

from __future__ import annotations

import pytest

SLOWEST_FIRST = (
    "packages/tinylm-train/tests/test_pipeline_training.py",
    "packages/tinylm-data/tests/test_build.py",
    "packages/tinylm-train/tests/test_distributed.py",
    "packages/tinylm-data/tests/test_dedup.py",
    "tests/test_longlora_end_to_end.py",
    "packages/tinylm-data/tests/test_chat_resume.py",
    "tests/test_rag_end_to_end.py",
    "packages/tinylm-train/tests/test_resume.py",
    "packages/tinylm-train/tests/test_cli.py",
    "packages/tinylm-eval/tests/test_prompt_ids.py",
    "packages/tinylm-data/tests/test_tokenizer.py",
)


def _file_of(item: pytest.Item) -> str:
    return item.nodeid.split("::", 1)[0]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    rank = {path: n for n, path in enumerate(SLOWEST_FIRST)}
    slow_files = {_file_of(item) for item in items if item.get_closest_marker("slow")}

    def order(item: pytest.Item) -> tuple[int, int]:
        path = _file_of(item)
        return (rank.get(path, len(rank)), 0 if path in slow_files else 1)

    items.sort(key=order)  # stable: tests keep their order within a file
