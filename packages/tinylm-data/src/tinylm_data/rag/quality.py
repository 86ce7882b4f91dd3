"""Retrieval quality at build time: recall@1/5/20 and MRR of the gold passages of questions.

The gold passages of a question (SQuAD layout: its context and answers) are the passages cut
from the indexed document whose cleaned text is the question's context, cleaned as its source
was, that contain at least one of its answers (cleaned the same way; both compared as
`textnorm.normalise`d text: case, width, punctuation and spaces folded). A passage dropped as an exact duplicate counts as
the passage it duplicates. Questions whose context is not in the index, or whose answers no
passage contains (an answer cut by a passage boundary), are counted and left out.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from tinylm_shards.retrieval import RetrievalIndex

from ..textnorm import dedup_key, normalise
from .squad import squad_records

if TYPE_CHECKING:
    from ..progress import Progress
    from .build import Corpus
    from .config import QualityEvalConfig

CUTOFFS = (1, 5, 20)


def gold_passage_ids(context: str, answers, corpus: Corpus) -> tuple[str | None, set[str]]:
    """(indexed document id or None, ids of its passages holding an answer)."""
    for cleaner in corpus.cleaners.values():
        doc_id = corpus.doc_of_key.get(dedup_key(cleaner(context)[0]))
        if doc_id is not None:
            break
    else:
        return None, set()
    wanted = [w for w in (normalise(cleaner(a)[0]) for a in answers) if w]
    return doc_id, {
        pid
        for pid, text in corpus.doc_passages.get(doc_id, [])
        if any(w in normalise(text) for w in wanted)
    }


def evaluate_retrieval(
    cfg: QualityEvalConfig, base: Path, corpus: Corpus, index_dir: Path, progress: Progress
) -> dict[str, Any]:
    path = Path(cfg.squad) if Path(cfg.squad).is_absolute() else base / cfg.squad
    index = RetrievalIndex.open(index_dir)
    questions, golds = [], []
    skipped = {"context_not_indexed": 0, "no_passage_holds_the_answer": 0, "no_answer": 0}
    for record in squad_records(path):
        if cfg.max_questions is not None and len(questions) >= cfg.max_questions:
            break
        if not record.answers:
            skipped["no_answer"] += 1
            continue
        doc_id, gold = gold_passage_ids(record.context, record.answers, corpus)
        if doc_id is None:
            skipped["context_not_indexed"] += 1
        elif not gold:
            skipped["no_passage_holds_the_answer"] += 1
        else:
            questions.append(record.question)
            golds.append(gold)
    hits_at = dict.fromkeys(CUTOFFS, 0)
    reciprocal = 0.0
    gold_per_question = 0
    for question, gold in zip(questions, golds, strict=True):
        progress.advance(1)
        ranks = [h.rank for h in index.search(question, max(CUTOFFS)) if h.passage.id in gold]
        gold_per_question += len(gold)
        if ranks:
            reciprocal += 1 / ranks[0]
            for k in CUTOFFS:
                hits_at[k] += ranks[0] <= k
    n = len(questions)
    return {
        "file": cfg.squad,
        "questions": n,
        "skipped": skipped,
        "gold_passages_per_question": round(gold_per_question / n, 3) if n else None,
        **{f"recall@{k}": round(hits_at[k] / n, 4) if n else None for k in CUTOFFS},
        f"mrr@{max(CUTOFFS)}": round(reciprocal / n, 4) if n else None,
    }
