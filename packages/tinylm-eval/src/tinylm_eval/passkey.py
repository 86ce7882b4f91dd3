"""Passkey retrieval: accuracy per prompt length and key depth, a digit-level partial score, and the
reports (results.json, predictions.jsonl, heatmap.png).

Prompts come from `passkey_prompts`; answers from the batch generation core (`generation.py`,
greedy). An answer's key is its first run of digits: exact when it equals the key, and its digit
score the share of the key's positions it matches (missing digits count as wrong). A model that
guesses uniform digits scores 10**-k exact and 0.1 per digit.
"""

from __future__ import annotations

import json
import logging
import re
from collections import defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path

from tinylm_eval import __version__
from tinylm_eval.generation import PromptRecord, generate_file
from tinylm_eval.models.base import GenerationOptions, LanguageModel, Progress
from tinylm_eval.passkey_prompts import LANGUAGES, PasskeyPrompt, plain_render, prompt_grid

logger = logging.getLogger(__name__)

TASK_VERSION = 1
PROMPT_MODES = ("auto", "chat", "plain")


@dataclass(frozen=True, kw_only=True)
class PasskeyConfig:
    lengths: tuple[int, ...] = (1024, 2048, 4096, 8192)
    """Prompt lengths in the model's tokens (template included); each prompt is at most this."""
    depths: tuple[float, ...] = (0.0, 0.25, 0.5, 0.75, 1.0)
    """Where the key sits in the filler: 0 first, 1 last."""
    trials: int = 5
    """Prompts (keys) per length and depth."""
    key_digits: int = 5
    seed: int = 0
    language: str = "en"
    """en or zh: the language of instruction, filler and question."""
    prompt: str = "auto"
    """chat: the model's chat template; plain: the message and an answer cue; auto: chat when the
    model has a template."""
    max_new_tokens: int | None = None
    """Answer tokens at most; None: 2 * key_digits + 8."""

    def __post_init__(self):
        if not self.lengths or any(n < 1 for n in self.lengths):
            raise ValueError(f"lengths must be positive token counts, not {self.lengths}")
        if len(set(self.lengths)) < len(self.lengths) or len(set(self.depths)) < len(self.depths):
            raise ValueError("lengths and depths must not repeat")
        if not self.depths or any(not 0 <= d <= 1 for d in self.depths):
            raise ValueError(f"depths must be in [0, 1], not {self.depths}")
        if self.trials < 1 or not 1 <= self.key_digits <= 30:
            raise ValueError("trials >= 1 and 1 <= key_digits <= 30 are required")
        if self.language not in LANGUAGES:
            raise ValueError(f"language must be one of {', '.join(LANGUAGES)}")
        if self.prompt not in PROMPT_MODES:
            raise ValueError(f"prompt must be one of {', '.join(PROMPT_MODES)}")
        if self.max_new_tokens is not None and self.max_new_tokens < 1:
            raise ValueError("max_new_tokens must be >= 1")

    @property
    def answer_tokens(self) -> int:
        return self.max_new_tokens or 2 * self.key_digits + 8


def parse_list(text: str, kind: type, option: str) -> tuple:
    """`"1024,2048"` -> (1024, 2048), a clear error naming the option otherwise."""
    try:
        return tuple(kind(item) for item in text.split(",") if item.strip())
    except ValueError:
        raise ValueError(f"{option} {text!r}: a comma-separated list of numbers") from None


def chat_or_plain(model: LanguageModel, config: PasskeyConfig):
    """("chat" or "plain", the render of a user message) for this model."""
    if config.prompt == "plain":
        return "plain", plain_render(config.language)
    try:
        model.chat_prompt([{"role": "user", "content": ""}])
    except ValueError:
        if config.prompt == "chat":
            raise
        return "plain", plain_render(config.language)
    return "chat", lambda message: model.chat_prompt([{"role": "user", "content": message}])


def build_prompts(model: LanguageModel, config: PasskeyConfig) -> tuple[str, list[PasskeyPrompt]]:
    """(prompt mode, every prompt of the grid); a length the model cannot take is an error."""
    room = model.context_length - config.answer_tokens
    too_long = [n for n in config.lengths if n > room]
    if too_long:
        raise ValueError(
            f"--lengths {','.join(map(str, too_long))}: the model's context of "
            f"{model.context_length} tokens leaves {room} for a prompt beside "
            f"{config.answer_tokens} answer tokens"
        )
    mode, render = chat_or_plain(model, config)
    prompts = prompt_grid(
        model.encode,
        render,
        lengths=config.lengths,
        depths=config.depths,
        trials=config.trials,
        key_digits=config.key_digits,
        seed=config.seed,
        language=config.language,
    )
    return mode, prompts


_DIGITS = re.compile(r"\d+")


def score_answer(answer: str, key: str) -> dict:
    """{"found", "exact", "digits"}: the answer's first run of digits against the key."""
    match = _DIGITS.search(answer)
    found = match.group() if match else ""
    same = sum(a == b for a, b in zip(found, key, strict=False))
    return {"found": found, "exact": found == key, "digits": same / len(key)}


def summarize(rows: list[dict], config: PasskeyConfig) -> dict:
    """Exact and digit accuracy overall, per length, per depth and per (length, depth) cell."""

    def mean(group: list[dict]) -> dict:
        return {
            "prompts": len(group),
            "accuracy": sum(r["exact"] for r in group) / len(group),
            "digit_accuracy": sum(r["digits"] for r in group) / len(group),
        }

    cells: dict[tuple[int, float], list[dict]] = defaultdict(list)
    for row in rows:
        cells[(row["length"], row["depth"])].append(row)
    return {
        **mean(rows),
        "chance": {"accuracy": 10.0**-config.key_digits, "digit_accuracy": 0.1},
        "by_length": {str(n): mean([r for r in rows if r["length"] == n]) for n in config.lengths},
        "by_depth": {str(d): mean([r for r in rows if r["depth"] == d]) for d in config.depths},
        "cells": [
            {"length": n, "depth": d, **mean(cells[(n, d)])}
            for n in config.lengths
            for d in config.depths
        ],
    }


def evaluate_passkey(
    model: LanguageModel,
    config: PasskeyConfig,
    out: Path,
    *,
    progress: Progress | None = None,
    prompts: tuple[str, list[PasskeyPrompt]] | None = None,
) -> dict:
    """Answers every prompt greedily, writes `out/{predictions.jsonl, results.json, heatmap.png}`
    (and the generation stats, `predictions.stats.json`); the report. `prompts` is
    `build_prompts(model, config)` when the caller has already made them."""
    mode, grid = prompts or build_prompts(model, config)
    records = []
    for index, prompt in enumerate(grid):
        record = {
            "id": index,
            "length": prompt.length,
            "depth": prompt.depth,
            "key": prompt.key,
            "filler_sentences": prompt.filler_sentences,
        }
        if mode == "chat":
            messages = [{"role": "user", "content": prompt.message}]
        else:
            messages, record["prompt"] = None, prompt.text
        records.append(PromptRecord(index + 1, record, messages))
    options = GenerationOptions(max_new_tokens=config.answer_tokens)
    predictions = out / "predictions.jsonl"
    stats = generate_file(model, records, options, predictions, progress=progress)
    rows = []
    for line in predictions.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        row.pop("prompt", None)  # why: the prompt is rebuilt from the config and seed
        if "error" in row:
            raise ValueError(f"passkey prompt {row['id']} was not answered: {row['error']}")
        rows.append(row | score_answer(row["output"], row["key"]))
    predictions.write_text(
        "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8"
    )
    report = {
        "task": "passkey",
        "task_version": TASK_VERSION,
        "tinylm_eval_version": __version__,
        "model": model.identity,
        "config": asdict(config) | {"max_new_tokens": config.answer_tokens},
        "prompt_format": mode,
        "prompt_tokens": {
            str(n): [min(ts), max(ts)]
            for n in config.lengths
            for ts in [[r["prompt_tokens"] for r in rows if r["length"] == n]]
        },
        "seconds": stats["seconds"],
        "scores": summarize(rows, config),
    }
    (out / "results.json").write_text(
        json.dumps(report, ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
    )
    plot_heatmap(report, out / "heatmap.png")
    return report


def plot_heatmap(report: dict, path: Path) -> None:
    """Exact-match accuracy per (depth, length), one cell each, the value written in it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    config = report["config"]
    lengths, depths = config["lengths"], config["depths"]
    grid = np.zeros((len(depths), len(lengths)))
    for cell in report["scores"]["cells"]:
        grid[depths.index(cell["depth"]), lengths.index(cell["length"])] = cell["accuracy"]
    fig, ax = plt.subplots(figsize=(1.2 * len(lengths) + 2.5, 0.6 * len(depths) + 1.8))
    image = ax.imshow(grid, vmin=0, vmax=1, cmap="RdYlGn", aspect="auto")
    for (row, column), value in np.ndenumerate(grid):
        ax.text(column, row, f"{value:.0%}", ha="center", va="center", fontsize=9)
    ax.set_xticks(range(len(lengths)), [str(n) for n in lengths])
    ax.set_yticks(range(len(depths)), [f"{d:g}" for d in depths])
    ax.set_xlabel("prompt tokens")
    ax.set_ylabel("key depth")
    scores = report["scores"]
    ax.set_title(
        f"passkey ({config['key_digits']} digits): {scores['accuracy']:.0%} exact, "
        f"{scores['digit_accuracy']:.0%} digits",
        fontsize=10,
    )
    fig.colorbar(image, ax=ax, label="exact match")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
