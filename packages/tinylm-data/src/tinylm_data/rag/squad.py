"""SQuAD-layout reading-comprehension files (SQuAD, DRCD, CMRC): contexts, questions, answers.

`{"data": [{"title": ..., "paragraphs": [{"context": ..., "qas": [{"id", "question",
"answers": [{"text", "answer_start"}]}]}]}]}`. The index reads the contexts as documents; the
RAFT SFT builder and `tinylm-eval rag` read the questions with their gold context through the
contract library's reader (`tinylm_shards.squad`), re-exported here.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from tinylm_shards.squad import SquadFileError, SquadRecord, squad_paragraphs, squad_records

from ..document import Document, Rejection

__all__ = ["SquadFileError", "SquadRecord", "squad_contexts", "squad_records"]

BAD_SQUAD_FILE = "bad_squad_file"
BAD_PARAGRAPH = "bad_paragraph"


def squad_contexts(
    path: Path, *, source: str, display: str | None = None
) -> Iterator[Document | Rejection]:
    """The contexts of a SQuAD-layout file as documents (id `<source>/<context id>`).

    A file that is not SQuAD layout, or a paragraph without a context, is a Rejection.
    """
    display = display or Path(path).name
    try:
        for number, (context_id, paragraph) in enumerate(squad_paragraphs(path), start=1):
            if paragraph is None:
                yield Rejection(
                    source, "read", BAD_PARAGRAPH, context_id, file=display, line=number
                )
                continue
            yield Document(
                f"{source}/{context_id}",
                paragraph["context"],
                source,
                {"file": display, "line": number},
            )
    except SquadFileError as exc:
        yield Rejection(source, "read", BAD_SQUAD_FILE, str(exc), file=display)
