"""The record types every stage passes along."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(slots=True)
class Document:
    """One document on its way through the pipeline.

    `id` is stable: the source's own id when it has one, otherwise a content hash plus the
    document's location, so it survives every stage and identifies the document in rejects.
    """

    id: str
    text: str
    source: str
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True, frozen=True)
class Rejection:
    """A document (or a piece of input) that was removed, and why.

    `stage` is where it was removed (read, clean, filter, exact_dedup, near_dedup, sample);
    `reason` is a short machine-readable code; `detail` is for humans.
    """

    source: str
    stage: str
    reason: str
    detail: str = ""
    doc_id: str | None = None
    file: str | None = None
    line: int | None = None

    def as_row(self) -> dict[str, Any]:
        return {
            "doc_id": self.doc_id,
            "source": self.source,
            "stage": self.stage,
            "reason": self.reason,
            "detail": self.detail,
            "file": self.file,
            "line": self.line,
        }
