"""Run one benchmark: read, build prompts, score in batches, aggregate."""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from pathlib import Path

from tinylm_eval import __version__
from tinylm_eval._prompt_ids import PromptIds, subject_prompt_ids
from tinylm_eval.data import LETTERS, Question, list_subjects, read_subject
from tinylm_eval.prefix_scoring import score_letters_with_prefix
from tinylm_eval.prompts import FORMATS, choose_shots
from tinylm_eval.results import aggregate
from tinylm_eval.scoring import answer_token_ids, predictions, score_letters, score_options

logger = logging.getLogger(__name__)

# 2: C-Eval and CMMLU headers name subjects in Chinese; categories as the benchmarks released them
TASK_VERSION = 2


@dataclass(frozen=True, kw_only=True)
class EvalConfig:
    benchmark: str
    data_dir: Path
    split: str
    subjects: list[str] | None = None
    shots: int = 5
    shot_seed: int | None = None  # None: the first k dev rows
    prompt_format: str = ""  # empty: the benchmark's own format
    method: str = (
        "letter"  # "letter" (Baichuan answer-token logits) or "option" (full-option log-likelihood)
    )
    batch_size: int = 8
    max_length: int = 2048
    # letter method: run each subject's header + exemplars once and reuse its key/value cache
    share_prefix: bool = True

    def __post_init__(self):
        if self.method not in ("letter", "option"):
            raise ValueError(f"method must be 'letter' or 'option', not {self.method!r}")
        if self.prompt_format and self.prompt_format not in FORMATS:
            raise ValueError(
                f"prompt format must be one of {sorted(FORMATS)}, not {self.prompt_format!r}"
            )
        if self.shots < 0 or self.batch_size < 1 or self.max_length < 1:
            raise ValueError("shots >= 0, batch_size >= 1 and max_length >= 1 are required")


def evaluate(
    model, tokenizer, config: EvalConfig, model_identity: dict | None = None, progress=None
):
    """(report, per-question records). Records keep prompt shots, scores, prediction and answer."""
    fmt = FORMATS[config.prompt_format or config.benchmark]
    subjects = config.subjects or list_subjects(config.benchmark, config.data_dir, config.split)

    def encode(text: str) -> list[int]:
        return tokenizer.encode(text, add_special_tokens=False)

    questions: list[Question] = []
    prompts: list[PromptIds] = []
    short: list[str] = []  # subjects whose dev split has fewer rows than the shots asked for
    for subject in subjects:
        shots = (
            choose_shots(
                read_subject(config.benchmark, config.data_dir, "dev", subject),
                config.shots,
                config.shot_seed,
            )
            if config.shots
            else []
        )
        if len(shots) < config.shots:
            short.append(subject)
        asked = read_subject(config.benchmark, config.data_dir, config.split, subject)
        questions += asked
        prompts += subject_prompt_ids(encode, fmt, subject, shots, asked, config.max_length)
    if short:
        logger.warning(
            "%d of %d subjects have fewer than %d dev rows and use all of theirs: %s",
            len(short),
            len(subjects),
            config.shots,
            ", ".join(short),
        )
    prompt_ids = [p.ids for p in prompts]
    truncated = sum(p.truncated for p in prompts)
    if truncated:
        logger.warning(
            "%d prompts exceed %d tokens even with 0 shots: their heads were cut",
            truncated,
            config.max_length,
        )
    if config.method == "letter":
        letter_ids = answer_token_ids(tokenizer, [fmt.answer_text(letter) for letter in LETTERS])
        if config.share_prefix:
            scores = _score_by_prefix(
                model, tokenizer, questions, prompts, letter_ids, config.batch_size, progress
            )
        else:
            scores = score_letters(
                model, tokenizer, prompt_ids, letter_ids, config.batch_size, progress
            )
    else:
        options = [
            [
                tokenizer.encode(f" {c}" if fmt.answer_separator else c, add_special_tokens=False)
                for c in q.choices
            ]
            for q in questions
        ]
        scores = score_options(model, tokenizer, prompt_ids, options, config.batch_size, progress)
    records = [
        {
            "subject": q.subject,
            "id": q.id,
            "index": q.index,
            "answer": q.answer,
            "prediction": p,
            "scores": dict(zip(LETTERS, s, strict=True)),
            "shots_used": prompt.shots_used,
            "truncated": prompt.truncated,
            "prompt_tokens": len(prompt.ids),
        }
        for q, p, s, prompt in zip(questions, predictions(scores), scores, prompts, strict=True)
    ]
    report = {
        "benchmark": config.benchmark,
        "task_version": TASK_VERSION,
        "tinylm_eval_version": __version__,
        "model": model_identity or {},
        "split": config.split,
        "prompt_format": fmt.name,
        "method": config.method,
        "share_prefix": config.share_prefix,
        "shots": config.shots,
        "shot_seed": config.shot_seed,
        "max_length": config.max_length,
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "shots_used_histogram": _histogram(r["shots_used"] for r in records),
        "truncated_prompts": truncated,
        "data_dir": str(config.data_dir),
    }
    if any(q.answer is None for q in questions):
        report["note"] = "no public answers for this split: see submission.json"
    else:
        report["scores"] = aggregate(config.benchmark, records)
    return report, records


def _score_by_prefix(
    model, tokenizer, questions, prompts, letter_ids, batch_size, progress
) -> list[list[float]]:
    """Letter scores with one prefix pass per (subject, shots used): the ids every prompt of the group
    starts with (each keeps at least its last token) run once, the rest of each prompt in batches.
    The scored ids are each prompt's own ids, so scores equal full-prompt scores up to float rounding."""
    groups: dict[tuple[str, int], list[int]] = {}
    alone: list[int] = []
    for i, (question, prompt) in enumerate(zip(questions, prompts, strict=True)):
        if prompt.truncated:
            alone.append(i)
        else:
            groups.setdefault((question.subject, prompt.shots_used), []).append(i)
    scores: list[list[float]] = [[] for _ in questions]
    for members in groups.values():
        rows = [prompts[i].ids for i in members]
        shared = _common_prefix(rows)
        got = score_letters_with_prefix(
            model,
            tokenizer,
            shared,
            [row[len(shared) :] for row in rows],
            letter_ids,
            batch_size,
            progress,
        )
        for i, row in zip(members, got, strict=True):
            scores[i] = row
    if alone:
        got = score_letters(
            model, tokenizer, [prompts[i].ids for i in alone], letter_ids, batch_size, progress
        )
        for i, row in zip(alone, got, strict=True):
            scores[i] = row
    return scores


def _common_prefix(rows: list[list[int]]) -> list[int]:
    """The longest run of ids every row starts with, leaving each row at least one id of its own."""
    first = rows[0]
    n = min(len(row) for row in rows) - 1
    for row in rows[1:]:
        if row[:n] != first[:n]:
            n = next(j for j in range(n) if row[j] != first[j])
    return first[:n]


def _histogram(values) -> dict[str, int]:
    counts: dict[str, int] = {}
    for value in values:
        counts[str(value)] = counts.get(str(value), 0) + 1
    return dict(sorted(counts.items()))
