"""A k-shot multiple-choice benchmark: read a split, build prompt ids, score through the model
interface, aggregate by subject and category."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from tinylm_eval import __version__
from tinylm_eval._prompt_ids import PromptIds, subject_prompt_ids
from tinylm_eval.data import LETTERS, SAMPLE_DIR, CsvLayout, DataError, Question
from tinylm_eval.download import Release
from tinylm_eval.models.base import ChoicePrompt, LanguageModel, Progress
from tinylm_eval.prompts import PromptFormat, choose_shots, prefix_text
from tinylm_eval.results import aggregate

logger = logging.getLogger(__name__)

METHODS = ("letter", "option")


@dataclass(frozen=True, kw_only=True)
class ChoiceConfig:
    data_dir: Path
    split: str
    subjects: list[str] | None = None
    """None: every subject of the split."""
    shots: int = 5
    shot_seed: int | None = None
    """None: the first k dev rows."""
    prompt_format: str = ""
    """Another registered benchmark's format by name; empty: the benchmark's own."""
    method: str = "letter"
    """"letter" (Baichuan answer-token logits) or "option" (full-option log-likelihood)."""
    batch_size: int = 8
    max_length: int = 2048
    share_prefix: bool = True
    """Letter method: let the model run each subject's header + exemplars once."""
    save_prompts: bool = False
    """Keep each question's whole prompt text in its record (`prompt`), to re-score elsewhere."""

    def __post_init__(self):
        if self.method not in METHODS:
            raise ValueError(f"method must be 'letter' or 'option', not {self.method!r}")
        if self.prompt_format and self.prompt_format not in prompt_formats():
            raise ValueError(
                f"prompt format must be one of {sorted(prompt_formats())}, not {self.prompt_format!r}"
            )
        if self.shots < 0 or self.batch_size < 1 or self.max_length < 1:
            raise ValueError("shots >= 0, batch_size >= 1 and max_length >= 1 are required")


def prompt_formats() -> dict[str, PromptFormat]:
    """Every registered multiple-choice task's prompt format, by name."""
    from tinylm_eval.tasks.registry import TASKS

    return {
        t.prompt_format.name: t.prompt_format
        for t in TASKS.values()
        if isinstance(t, MultipleChoiceTask)
    }


@dataclass(frozen=True, kw_only=True)
class MultipleChoiceTask:
    name: str
    version: int
    """Raised whenever prompts, parsing or aggregation change what a model scores."""
    title: str
    layout: CsvLayout
    prompt_format: PromptFormat
    categories: Mapping[str, tuple[str, ...]]
    """subject → its categories, as the benchmark's authors released them."""
    release: Release
    split: str
    """The split with public answers: its command's default and the one `all` scores."""

    def data_dir(self, data: str | None) -> Path:
        """`sample` → the authored sample shipped with the package; a path → itself; None → the
        official release, downloaded once."""
        if data == "sample":
            return SAMPLE_DIR / self.name
        if data is None:
            return self.release.fetch(self.name)
        path = Path(data)
        if not path.is_dir():
            raise DataError(f"--data {data}: not a directory")
        return path

    def subjects(self, config: ChoiceConfig) -> list[str]:
        """The subjects `config` scores; a name the split lacks is an error naming those it has."""
        available = self.layout.subjects(config.data_dir, config.split)
        if not config.subjects:
            return available
        unknown = [s for s in config.subjects if s not in available]
        if unknown:
            raise DataError(
                f"{self.name} {config.split} has no subject {', '.join(unknown)}; "
                f"its subjects are {', '.join(available)}"
            )
        return list(dict.fromkeys(config.subjects))

    def evaluate(
        self,
        model: LanguageModel,
        config: ChoiceConfig,
        progress: Progress | None = None,
        *,
        on_total: Callable[[int], None] | None = None,
    ) -> tuple[dict, list[dict]]:
        """(report, per-question records). Records keep prompt shots, scores, prediction and answer
        (and the prompt text with `save_prompts`). `on_total` gets the number of questions before
        scoring starts, `progress` the questions scored."""
        fmt = prompt_formats()[config.prompt_format] if config.prompt_format else self.prompt_format
        questions, prompts, texts = self._prompts(model, fmt, self.subjects(config), config)
        if on_total:
            on_total(len(questions))
        truncated = sum(p.truncated for p in prompts)
        if truncated:
            logger.warning(
                "%d prompts exceed %d tokens even with 0 shots: their heads were cut",
                truncated,
                config.max_length,
            )
        if config.method == "letter":
            choice_prompts = [
                ChoicePrompt(
                    p.ids,
                    None if p.truncated or not config.share_prefix else (q.subject, p.shots_used),
                )
                for q, p in zip(questions, prompts, strict=True)
            ]
            scores = model.choice_scores(
                choice_prompts,
                [fmt.answer_text(letter) for letter in LETTERS],
                batch_size=config.batch_size,
                progress=progress,
            )
        else:
            scores = self._option_scores(model, fmt, questions, prompts, config, progress)
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
        if config.save_prompts:
            for record, text in zip(records, texts, strict=True):
                record["prompt"] = text
        report = {
            "benchmark": self.name,
            "task_version": self.version,
            "tinylm_eval_version": __version__,
            "model": model.identity,
            "split": config.split,
            "prompt_format": fmt.name,
            "method": config.method,
            "share_prefix": config.share_prefix,
            "shots": config.shots,
            "shot_seed": config.shot_seed,
            "max_length": config.max_length,
            "answer_spellings": [fmt.answer_text(letter) for letter in LETTERS],
            "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "shots_used_histogram": _histogram(r["shots_used"] for r in records),
            "truncated_prompts": truncated,
            "data_dir": str(config.data_dir),
        }
        if any(q.answer is None for q in questions):
            report["note"] = "no public answers for this split: see submission.json"
        else:
            report["scores"] = aggregate(self.name, self.categories, records)
        return report, records

    def _prompts(
        self, model: LanguageModel, fmt: PromptFormat, subjects: list[str], config: ChoiceConfig
    ) -> tuple[list[Question], list[PromptIds], list[str]]:
        """Questions, their prompt ids and (with `save_prompts`, else empty) their prompt texts."""
        questions: list[Question] = []
        prompts: list[PromptIds] = []
        texts: list[str] = []
        short: list[str] = []  # subjects whose dev split has fewer rows than the shots asked for
        for subject in subjects:
            shots = (
                choose_shots(
                    self.layout.read(config.data_dir, "dev", subject),
                    config.shots,
                    config.shot_seed,
                )
                if config.shots
                else []
            )
            if len(shots) < config.shots:
                short.append(subject)
            asked = self.layout.read(config.data_dir, config.split, subject)
            questions += asked
            ids = subject_prompt_ids(model.encode, fmt, subject, shots, asked, config.max_length)
            prompts += ids
            if config.save_prompts:
                # why: the text of the ids scored; a truncated prompt keeps its whole 0-shot text
                texts += [
                    prefix_text(fmt, subject, shots[: p.shots_used]) + fmt.render_question(q)
                    for q, p in zip(asked, ids, strict=True)
                ]
        if short:
            logger.warning(
                "%d of %d subjects have fewer than %d dev rows and use all of theirs: %s",
                len(short),
                len(subjects),
                config.shots,
                ", ".join(short),
            )
        return questions, prompts, texts

    @staticmethod
    def _option_scores(model, fmt, questions, prompts, config, progress) -> list[list[float]]:
        """Per question, the log-likelihood of each option's text after the prompt."""
        requests = []
        for q, prompt in zip(questions, prompts, strict=True):
            for letter, choice in zip(LETTERS, q.choices, strict=True):
                option = model.encode(f" {choice}" if fmt.answer_separator else choice)
                if not option:
                    raise ValueError(f"question {q.index}: option {letter} tokenizes to nothing")
                requests.append((prompt.ids, option))
        flat = model.loglikelihood(
            requests,
            batch_size=config.batch_size * len(LETTERS),
            progress=(lambda n: progress(n // len(LETTERS))) if progress else None,
        )
        width = len(LETTERS)
        return [flat[i : i + width] for i in range(0, len(flat), width)]


def predictions(scores: list[list[float]]) -> list[str]:
    """The letter of the highest score (the first on a tie)."""
    return [LETTERS[max(range(len(s)), key=s.__getitem__)] for s in scores]


def _histogram(values) -> dict[str, int]:
    counts: dict[str, int] = {}
    for value in values:
        counts[str(value)] = counts.get(str(value), 0) + 1
    return dict(sorted(counts.items()))
