"""The task registry: every benchmark registers itself once under its name."""

from __future__ import annotations

from typing import TypeVar

T = TypeVar("T")

TASKS: dict[str, object] = {}


class UnknownTaskError(KeyError):
    """A task name that no module registered."""

    def __str__(self) -> str:
        return str(self.args[0])


def register(task: T) -> T:
    """Add `task` (anything with a unique `name` and an integer `version`) to the registry."""
    name, version = getattr(task, "name", None), getattr(task, "version", None)
    if not name or not isinstance(version, int):
        raise ValueError(f"a task needs a name and an integer version, not {name!r} {version!r}")
    if name in TASKS:
        raise ValueError(f"task {name!r} is registered twice")
    TASKS[name] = task
    return task


def get_task(name: str):
    """The registered task `name`; an unknown name raises with the names there are."""
    try:
        return TASKS[name]
    except KeyError:
        raise UnknownTaskError(
            f"unknown task {name!r}: registered tasks are {', '.join(sorted(TASKS))}"
        ) from None
