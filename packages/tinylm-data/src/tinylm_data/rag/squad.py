"""SQuAD-layout reading-comprehension files (SQuAD, DRCD, CMRC): contexts, questions, answers.

`{"data": [{"title": ..., "paragraphs": [{"context": ..., "qas": [{"id", "question",
"answers": [{"text", "answer_start"}]}]}]}]}`. The index reads the contexts as documents; the
retrieval evaluation and the RAFT SFT builder read the questions with their gold context.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ..document import Document, Rejection

BAD_SQUAD_FILE = "bad_squad_file"
BAD_PARAGRAPH = "bad_paragraph"


@dataclass(frozen=True, slots=True)
class SquadRecord:
    """One question with the context that answers it (its gold context)."""

    context: str
    question: str
    answers: tuple[str, ...]
    """Distinct answer texts, in file order; empty for an unanswerable question."""
    id: str
    context_id: str
    """`<file stem>/<article>-<paragraph>`: the same for every question of one paragraph."""


class SquadFileError(ValueError):
    """A file that is not in SQuAD layout."""


def _articles(path: Path) -> list:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SquadFileError(f"{path}: cannot read a SQuAD-layout file: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("data"), list):
        raise SquadFileError(f"{path}: not SQuAD layout (expected an object with a 'data' list)")
    return data["data"]


def _paragraphs(path: Path) -> Iterator[tuple[str, dict | None]]:
    """(context id, paragraph or None when malformed) for every paragraph of the file."""
    for a, article in enumerate(_articles(path)):
        paragraphs = article.get("paragraphs") if isinstance(article, dict) else None
        if not isinstance(paragraphs, list):
            yield f"{Path(path).stem}/{a}", None
            continue
        for p, paragraph in enumerate(paragraphs):
            ok = isinstance(paragraph, dict) and isinstance(paragraph.get("context"), str)
            ok = ok and bool(paragraph["context"].strip())
            yield f"{Path(path).stem}/{a}-{p}", paragraph if ok else None


def squad_records(path: str | Path) -> Iterator[SquadRecord]:
    """Every question of a SQuAD-layout file with its context and distinct answer texts.

    Raises SquadFileError for a file that is not SQuAD layout; questions without a string
    `question` are skipped (a malformed paragraph has none to give).
    """
    for context_id, paragraph in _paragraphs(Path(path)):
        if paragraph is None:
            continue
        for q, qa in enumerate(paragraph.get("qas") or []):
            if not isinstance(qa, dict) or not isinstance(qa.get("question"), str):
                continue
            answers = []
            for answer in qa.get("answers") or []:
                text = answer.get("text") if isinstance(answer, dict) else None
                if isinstance(text, str) and text.strip() and text not in answers:
                    answers.append(text)
            yield SquadRecord(
                context=paragraph["context"],
                question=qa["question"],
                answers=tuple(answers),
                id=str(qa.get("id", f"{context_id}-{q}")),
                context_id=context_id,
            )


def squad_contexts(
    path: Path, *, source: str, display: str | None = None
) -> Iterator[Document | Rejection]:
    """The contexts of a SQuAD-layout file as documents (id `<source>/<context id>`).

    A file that is not SQuAD layout, or a paragraph without a context, is a Rejection.
    """
    display = display or Path(path).name
    try:
        for number, (context_id, paragraph) in enumerate(_paragraphs(Path(path)), start=1):
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
