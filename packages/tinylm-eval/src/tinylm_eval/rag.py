"""`tinylm-eval rag`: how much retrieval adds, on held-out SQuAD-layout questions.

Each question is answered three times through the one generation core (`generation.py`) in the
model's chat template, with the user turn built by the shared `rag_prompt` (the RAFT SFT data
uses the same function, so the prompts match the training ones): closed book (the question
alone), retrieved (the index's top k passages), oracle (the gold context alone). Scores: exact
match and F1 against the best of the gold answers (SQuAD normalisation for English, one token per
Chinese character), and the retrieval recall of the gold passage at k (`is_gold_passage`).

Held-out questions come from an article slice of the file (`articles`, e.g. `800:` when training
used `0:800`), so no held-out context was seen in training.
"""

from __future__ import annotations

import json
import re
import string
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

from tinylm_eval.generation import PromptRecord, generate_file
from tinylm_eval.models.base import GenerationOptions, LanguageModel, Progress
from tinylm_shards.squad import NEAR_COPY, SquadRecord, is_gold_passage, squad_records

SETTINGS = ("closed_book", "retrieved", "oracle")

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCT = set(string.punctuation) | {c for c in "，。！？、；：“”‘’（）《》【】「」『』〈〉…—·～"}
_CJK = re.compile("[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f]")


class RagEvalError(ValueError):
    """A data mistake found before a model loads."""


# --- metrics -----------------------------------------------------------------------------------


def normalize_answer(text: str) -> str:
    """SQuAD's normalisation (lower case, no punctuation or English articles, single spaces),
    after NFKC so full-width forms compare as ASCII; Chinese punctuation removed too."""
    text = unicodedata.normalize("NFKC", text).lower()
    text = "".join(c for c in text if c not in _PUNCT)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def answer_tokens(text: str) -> list[str]:
    """Tokens F1 counts: every Chinese character alone, other text in SQuAD-normalised words."""
    tokens = []
    for word in normalize_answer(text).split():
        start = 0
        for match in _CJK.finditer(word):
            if match.start() > start:
                tokens.append(word[start : match.start()])
            tokens.append(match.group())
            start = match.end()
        if start < len(word):
            tokens.append(word[start:])
    return tokens


def exact_match(prediction: str, answers: Iterable[str]) -> float:
    """1.0 when the normalised prediction equals a normalised answer."""
    predicted = "".join(answer_tokens(prediction))
    return float(any(predicted == "".join(answer_tokens(a)) for a in answers))


def f1_score(prediction: str, answers: Iterable[str]) -> float:
    """The best token F1 of the prediction against any answer (0 with no common token)."""
    predicted = answer_tokens(prediction)
    best = 0.0
    for answer in answers:
        gold = answer_tokens(answer)
        common = sum((Counter(predicted) & Counter(gold)).values())
        if not common:
            best = max(best, float(predicted == gold))  # both empty: a match
            continue
        precision, recall = common / len(predicted), common / len(gold)
        best = max(best, 2 * precision * recall / (precision + recall))
    return best


# --- the evaluation ----------------------------------------------------------------------------


def held_out_records(path: Path, *, articles: str | None, limit: int | None) -> list[SquadRecord]:
    """The answerable questions of the article slice, at most `limit`; an error when none."""
    if not Path(path).is_file():
        raise RagEvalError(f"--data {path}: no such file")
    records = []
    for record in squad_records(path, articles):
        if record.answers:
            records.append(record)
        if limit is not None and len(records) >= limit:
            break
    if not records:
        raise RagEvalError(f"--data {path}: no answerable question in articles {articles or ':'}")
    return records


def rag_prompts(
    records: Sequence[SquadRecord], index, *, k: int, near_copy: float = NEAR_COPY
) -> tuple[dict[str, list[str]], list[list[str]], list[bool]]:
    """(user turn per setting, retrieved passage ids, gold retrieved) for every record."""
    from tinylm_shards.retrieval import rag_prompt

    prompts = {s: [] for s in SETTINGS}
    retrieved_ids, gold_found = [], []
    for record in records:
        hits = index.search(record.question, k)
        passages = [h.passage.text for h in hits]
        prompts["closed_book"].append(rag_prompt(record.question, None))
        prompts["retrieved"].append(rag_prompt(record.question, passages))
        prompts["oracle"].append(rag_prompt(record.question, [record.context]))
        retrieved_ids.append([h.passage.id for h in hits])
        gold_found.append(
            any(
                is_gold_passage(p, record.context, record.answers, near_copy=near_copy)
                for p in passages
            )
        )
    return prompts, retrieved_ids, gold_found


def evaluate_rag(
    model: LanguageModel,
    records: Sequence[SquadRecord],
    index,
    options: GenerationOptions,
    out_dir: Path,
    *,
    k: int = 3,
    progress: Progress | None = None,
) -> dict:
    """Answers in the three settings; writes predictions.jsonl, results.json and rag.png to
    `out_dir`; the results."""
    out_dir.mkdir(parents=True, exist_ok=True)
    prompts, retrieved_ids, gold_found = rag_prompts(records, index, k=k)
    outputs: dict[str, list[dict]] = {}
    generation = {}
    for setting in SETTINGS:
        items = [
            PromptRecord(n + 1, {"id": r.id}, [{"role": "user", "content": text}])
            for n, (r, text) in enumerate(zip(records, prompts[setting], strict=True))
        ]
        target = out_dir / "generations" / f"{setting}.jsonl"
        generation[setting] = generate_file(model, items, options, target, progress=progress)
        with target.open(encoding="utf-8") as lines:
            outputs[setting] = [json.loads(line) for line in lines]
    scores = {s: {"em": 0.0, "f1": 0.0, "answered": 0} for s in SETTINGS}
    with (out_dir / "predictions.jsonl").open("w", encoding="utf-8") as lines:
        for n, record in enumerate(records):
            row = {
                "id": record.id,
                "context_id": record.context_id,
                "question": record.question,
                "answers": list(record.answers),
                "retrieved_ids": retrieved_ids[n],
                "gold_retrieved": gold_found[n],
            }
            for setting in SETTINGS:
                got = outputs[setting][n]
                prediction = got.get("output")
                em = exact_match(prediction, record.answers) if prediction is not None else 0.0
                f1 = f1_score(prediction, record.answers) if prediction is not None else 0.0
                scores[setting]["em"] += em
                scores[setting]["f1"] += f1
                scores[setting]["answered"] += prediction is not None
                row[setting] = {"prediction": prediction, "em": em, "f1": round(f1, 4)}
                if prediction is None:
                    row[setting]["error"] = got.get("error")
            lines.write(json.dumps(row, ensure_ascii=False) + "\n")
    n = len(records)
    for setting in SETTINGS:
        scores[setting]["em"] = round(scores[setting]["em"] / n, 4)
        scores[setting]["f1"] = round(scores[setting]["f1"] / n, 4)
    results = {
        "model": model.identity,
        "questions": n,
        "k": k,
        "scores": scores,
        f"retrieval_recall@{k}": round(sum(gold_found) / n, 4),
        "gap_retrieved_vs_closed_book": {
            m: round(scores["retrieved"][m] - scores["closed_book"][m], 4) for m in ("em", "f1")
        },
        "options": generation["closed_book"]["options"],
        "seconds": round(sum(g["seconds"] for g in generation.values()), 3),
    }
    (out_dir / "results.json").write_text(
        json.dumps(results, ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
    )
    plot_settings(results, out_dir / "rag.png")
    return results


def plot_settings(results: dict, path: Path) -> None:
    """Grouped bars: EM and F1 per setting, the retrieval recall in the title."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    width = 0.38
    for offset, metric in ((-width / 2, "em"), (width / 2, "f1")):
        values = [results["scores"][s][metric] for s in SETTINGS]
        bars = ax.bar(
            [i + offset for i in range(len(SETTINGS))], values, width, label=metric.upper()
        )
        ax.bar_label(bars, fmt="%.2f", fontsize=8)
    ax.set_xticks(range(len(SETTINGS)), [s.replace("_", " ") for s in SETTINGS])
    ax.set_ylim(0, 1.05)
    k = results["k"]
    ax.set_title(
        f"{results['questions']} questions, retrieval recall@{k} "
        f"{results[f'retrieval_recall@{k}']:.2f}",
        fontsize=10,
    )
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
