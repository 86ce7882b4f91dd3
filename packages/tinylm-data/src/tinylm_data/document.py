"""The record types every stage passes along."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np


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

    `stage` is where it was removed (a `stages.Stage` value);
    `reason` is a short machine-readable code; `detail` is for humans. Duplicates also name
    the kept document (`duplicate_of`, its doc_id) and their `cluster` (the build-wide ordinal
    of that kept document, the same for every member of a cluster).
    """

    source: str
    stage: str
    reason: str
    detail: str = ""
    doc_id: str | None = None
    file: str | None = None
    line: int | None = None
    duplicate_of: str | None = None
    cluster: int | None = None

    def as_row(self) -> dict[str, Any]:
        return {
            "doc_id": self.doc_id,
            "source": self.source,
            "stage": self.stage,
            "reason": self.reason,
            "detail": self.detail,
            "file": self.file,
            "line": self.line,
            "duplicate_of": self.duplicate_of,
            "cluster": self.cluster,
        }


NO_KEY = bytes(16)  # exact dedup off: the key is never read


@dataclass(slots=True)
class Row:
    """One document inside a step batch; each step fills in what it computes.

    `token_columns` are per-token values aligned with `tokens` (same length), such as a label
    mask; they travel through packing into the shards next to `input_ids`.
    """

    doc_id: str
    line: int | None
    text: str = ""
    language: str = ""
    tokens: np.ndarray | None = None  # (n,) int32, ends with EOS
    token_columns: dict[str, np.ndarray] = field(default_factory=dict)  # name -> (n,)
    key: bytes = NO_KEY  # 16-byte hash of the normalised text (exact dedup)
    signature: np.ndarray | None = None  # (num_perm,) MinHash, only when near dedup is on
    num_chars: int = 0  # of the cleaned text, kept once the text itself is dropped
    ordinal: int = -1  # position among all kept documents of the build (assembly)
    copies: int = 1  # how many times the mixture uses it (assembly)
    validation: bool = False  # held out: packed once into the validation split (assembly)


@dataclass(slots=True)
class Batch:
    """What every step takes and returns: documents of one input file, in input order."""

    source_index: int
    source: str
    file: str
    rows: list[Row]
    changes: Counter = field(default_factory=Counter)  # in-place edits by name (cleaning rules)

    def rejection(
        self,
        row: Row,
        stage: str,
        reason: str,
        detail: str = "",
        *,
        duplicate_of: str | None = None,
        cluster: int | None = None,
    ) -> Rejection:
        return Rejection(
            self.source,
            stage,
            reason,
            detail,
            row.doc_id,
            self.file,
            row.line,
            duplicate_of,
            cluster,
        )
