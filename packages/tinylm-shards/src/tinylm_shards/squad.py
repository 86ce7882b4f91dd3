"""SQuAD-layout reading-comprehension files (SQuAD, DRCD, CMRC): questions with their gold context.

`{"data": [{"title": ..., "paragraphs": [{"context": ..., "qas": [{"id", "question",
"answers": [{"text", "answer_start"}]}]}]}]}`. Read by the RAFT SFT builder (tinylm-data) and by
`tinylm-eval rag`, which do not import each other. `articles="0:800"` takes articles [0, 800) of
the file, so a training set and a held-out set cut at one article boundary never share a context.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path


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
    """A file that is not in SQuAD layout, or an article slice that is not `start:stop`."""


def article_slice(spec: str | None) -> slice:
    """`"0:800"`, `"800:"`, `":100"` or None (every article) as a slice of the article list."""
    if spec is None:
        return slice(None)
    parts = spec.split(":")
    try:
        if len(parts) != 2:
            raise ValueError
        start, stop = (int(p) if p.strip() else None for p in parts)
    except ValueError:
        raise SquadFileError(
            f"articles {spec!r}: expected START:STOP, e.g. 0:800 or 800:"
        ) from None
    if (start is not None and start < 0) or (stop is not None and stop < 0):
        raise SquadFileError(f"articles {spec!r}: negative positions are not allowed")
    return slice(start, stop)


def squad_articles(path: str | Path) -> list:
    """The `data` list of a SQuAD-layout file; SquadFileError when it has none."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SquadFileError(f"{path}: cannot read a SQuAD-layout file: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("data"), list):
        raise SquadFileError(f"{path}: not SQuAD layout (expected an object with a 'data' list)")
    return data["data"]


def squad_paragraphs(
    path: str | Path, articles: str | None = None
) -> Iterator[tuple[str, dict | None]]:
    """(context id, paragraph or None when malformed) for every paragraph of the chosen articles.

    Context ids count articles in the whole file, so a slice keeps the ids of the full file.
    """
    stem = Path(path).stem
    chosen = article_slice(articles)
    all_articles = squad_articles(path)
    for a in range(len(all_articles))[chosen]:
        article = all_articles[a]
        paragraphs = article.get("paragraphs") if isinstance(article, dict) else None
        if not isinstance(paragraphs, list):
            yield f"{stem}/{a}", None
            continue
        for p, paragraph in enumerate(paragraphs):
            ok = isinstance(paragraph, dict) and isinstance(paragraph.get("context"), str)
            ok = ok and bool(paragraph["context"].strip())
            yield f"{stem}/{a}-{p}", paragraph if ok else None


def squad_records(path: str | Path, articles: str | None = None) -> Iterator[SquadRecord]:
    """Every question of a SQuAD-layout file (of the `articles` slice) with its context and
    distinct answer texts.

    Raises SquadFileError for a file that is not SQuAD layout; questions without a string
    `question` are skipped (a malformed paragraph has none to give).
    """
    for context_id, paragraph in squad_paragraphs(path, articles):
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


# --- which passage is the gold one ---------------------------------------------------------------

NEAR_COPY = 0.5
"""Default share of a passage's character 5-grams found in the gold context above which the
passage counts as (part of) the gold context."""


def fold(text: str) -> str:
    """Text as compared here: NFKC, casefold, Traditional to Simplified Chinese (when the
    `retrieval` extra's OpenCC is installed), letters and digits only."""
    import unicodedata

    text = unicodedata.normalize("NFKC", text).casefold()
    try:
        from .retrieval import _libraries

        text = _libraries()["t2s"].convert(text)
    except ImportError:
        pass
    return "".join(c for c in text if c.isalnum())


def _grams(text: str, n: int = 5) -> set[str]:
    return {text[i : i + n] for i in range(max(1, len(text) - n + 1))} if text else set()


def containment(passage: str, context: str) -> float:
    """Share of the passage's character 5-grams (of folded text) that occur in the context."""
    grams = _grams(fold(passage))
    return len(grams & _grams(fold(context))) / len(grams) if grams else 0.0


def holds_answer(passage: str, answers) -> bool:
    """Whether the folded passage contains one of the folded answers."""
    folded = fold(passage)
    return any(a and a in folded for a in (fold(x) for x in answers))


def is_gold_passage(passage: str, context: str, answers, *, near_copy: float = NEAR_COPY) -> bool:
    """A passage of the gold context (containment >= near_copy) that holds an answer."""
    return holds_answer(passage, answers) and containment(passage, context) >= near_copy
