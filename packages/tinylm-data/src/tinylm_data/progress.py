"""The progress hooks a front end implements (the CLI draws bars); the defaults do nothing."""

from __future__ import annotations


class Progress:
    def stage(self, name: str, total: int | None) -> None: ...

    def advance(self, amount: int) -> None: ...
