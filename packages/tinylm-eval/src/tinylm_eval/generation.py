"""Batched generation from a JSON-lines file of prompts: each line's answer, and run stats.

A line is an object with `prompt` (text: one user message in the model's chat template, or with
`raw` the text continued as it is) or `messages` (`{"role", "content"}` objects ending with the
user's); every other key (an id, a reference answer) is copied to the output line.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tinylm_eval.chat.session import HistoryError, check_messages, fit_history
from tinylm_eval.models.base import GenerationOptions, LanguageModel, Progress


class PromptsError(ValueError):
    """A prompts file that cannot be read as asked, with its file and line."""


@dataclass(frozen=True, slots=True)
class PromptRecord:
    line: int
    record: dict
    messages: list[dict] | None
    """None: `record["prompt"]` is continued as it is."""


def read_prompts(path: Path, *, raw: bool) -> list[PromptRecord]:
    """Every line of `path` checked before a model loads: the first bad one is an error."""
    if not path.is_file():
        raise PromptsError(f"--prompts {path}: no such file")
    records = []
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            where = f"{path}:{number}"
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                raise PromptsError(f"{where}: not JSON ({error.msg})") from None
            if not isinstance(record, dict) or ("prompt" in record) == ("messages" in record):
                raise PromptsError(f"{where}: an object with either prompt or messages")
            for key in ("output", "prompt_tokens", "output_tokens", "error"):
                if key in record:
                    raise PromptsError(f"{where}: {key!r} is a key of the output line")
            if "prompt" in record:
                if not isinstance(record["prompt"], str) or not record["prompt"]:
                    raise PromptsError(f"{where}: prompt must be a non-empty string")
                messages = None if raw else [{"role": "user", "content": record["prompt"]}]
            elif raw:
                raise PromptsError(f"{where}: messages need the chat template (no --raw)")
            else:
                if not isinstance(record["messages"], list):
                    raise PromptsError(f"{where}: messages must be a list")
                try:
                    messages = check_messages(record["messages"], where=f"{where}: messages")
                except HistoryError as error:
                    raise PromptsError(str(error)) from None
            records.append(PromptRecord(number, record, messages))
    if not records:
        raise PromptsError(f"--prompts {path}: no prompts")
    return records


def prompt_texts(
    model: LanguageModel, records: Sequence[PromptRecord], answer_tokens: int
) -> list[str | HistoryError]:
    """Each record's prompt text (history cut to fit), or why it cannot be answered."""
    texts: list[str | HistoryError] = []
    for item in records:
        if item.messages is None:
            text = item.record["prompt"]
            length = len(model.encode(text))
            room = model.context_length - answer_tokens
            texts.append(
                text
                if length <= room
                else HistoryError(f"the prompt is {length} tokens; {room} fit with the answer")
            )
            continue
        try:
            texts.append(fit_history(model, item.messages, answer_tokens)[1])
        except HistoryError as error:
            texts.append(error)
    return texts


def generate_file(
    model: LanguageModel,
    records: Sequence[PromptRecord],
    options: GenerationOptions,
    out: Path,
    *,
    progress: Progress | None = None,
) -> dict:
    """Answers every record into `out` (JSON lines, in input order) and writes the run's stats
    beside it (`<out stem>.stats.json`); the stats."""
    started = time.perf_counter()
    texts = prompt_texts(model, records, options.max_new_tokens)
    answerable = [i for i, t in enumerate(texts) if isinstance(t, str)]
    if progress and len(answerable) < len(records):
        progress(len(records) - len(answerable))
    outputs = model.generate([texts[i] for i in answerable], options, progress=progress)
    answers = dict(zip(answerable, outputs, strict=True))
    out.parent.mkdir(parents=True, exist_ok=True)
    prompt_tokens = output_tokens = 0
    with out.open("w", encoding="utf-8") as lines:
        for i, item in enumerate(records):
            row = dict(item.record)
            if i in answers:
                row["output"] = answers[i]
                row["prompt_tokens"] = len(model.encode(texts[i]))
                row["output_tokens"] = len(model.encode(answers[i]))
                prompt_tokens += row["prompt_tokens"]
                output_tokens += row["output_tokens"]
            else:
                row["error"] = str(texts[i])
            lines.write(json.dumps(row, ensure_ascii=False) + "\n")
    seconds = time.perf_counter() - started
    stats = {
        "model": model.identity,
        "options": dataclasses.asdict(options),
        "prompts": len(records),
        "answered": len(answers),
        "rejected": len(records) - len(answers),
        "rejected_lines": [records[i].line for i in range(len(records)) if i not in answers],
        "prompt_tokens": prompt_tokens,
        "output_tokens": output_tokens,
        "seconds": round(seconds, 3),
        "output_tokens_per_second": round(output_tokens / seconds, 2) if seconds else None,
        "output": str(out),
    }
    stats_path(out).write_text(json.dumps(stats, ensure_ascii=False, indent=2) + "\n")
    return stats


def stats_path(out: Path) -> Path:
    return out.with_name(f"{out.stem}.stats.json")
