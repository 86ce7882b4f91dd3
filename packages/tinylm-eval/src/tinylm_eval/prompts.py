"""Multiple-choice prompts (subject header, k-shot exemplars, question, A-D, answer cue) and shot choice.

Each benchmark's task module defines its `PromptFormat`; scoring reads the answer spelling the
exemplars use (`answer_text`).
"""

from __future__ import annotations

import logging
import random
from collections.abc import Mapping
from dataclasses import dataclass, field

from tinylm_eval.data import LETTERS, Question

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True, kw_only=True)
class PromptFormat:
    name: str
    header: str  # names the subject: "... about {subject}.\n\n"
    question_prefix: str
    cue: str
    answer_separator: str  # between the cue and the letter: " " for "Answer: A", "" for "答案：A"
    subject_names: Mapping[str, str] = field(default_factory=dict)  # subject → the header's name

    def subject_title(self, subject: str) -> str:
        """The subject as the header names it: its entry in `subject_names` (the Chinese names of the
        C-Eval and CMMLU scripts), else the file name with spaces ("high school geography")."""
        return self.subject_names.get(subject) or subject.replace("_", " ")

    def render_question(self, question: Question) -> str:
        options = "".join(
            f"\n{letter}. {text}" for letter, text in zip(LETTERS, question.choices, strict=True)
        )
        return f"{self.question_prefix}{question.question}{options}\n{self.cue}"

    def render_exemplar(self, question: Question) -> str:
        return f"{self.render_question(question)}{self.answer_separator}{question.answer}\n\n"

    def answer_text(self, letter: str) -> str:
        return f"{self.answer_separator}{letter}"


def choose_shots(dev: list[Question], k: int, seed: int | None) -> list[Question]:
    """The first k dev rows, or k rows drawn with `seed` (same seed, same shots, same order); all
    of them when the dev split has fewer than k (the shots used are recorded per question)."""
    k = min(k, len(dev))
    if seed is None:
        return dev[:k]
    return random.Random(seed).sample(dev, k)


@dataclass(frozen=True, slots=True)
class BuiltPrompt:
    text: str
    shots_used: int
    truncated: bool  # even with 0 shots the prompt was too long; its head was cut


def prefix_text(fmt: PromptFormat, subject: str, shots: list[Question]) -> str:
    """The part every question of a subject shares: the header and the exemplars."""
    header = fmt.header.format(subject=fmt.subject_title(subject))
    return header + "".join(fmt.render_exemplar(s) for s in shots)


def build_prompt(
    fmt: PromptFormat, question: Question, shots: list[Question], count_tokens, max_length: int
) -> BuiltPrompt:
    """Header + shots + question, dropping shots from the end until `count_tokens(text) <= max_length`."""
    tail = fmt.render_question(question)
    for used in range(len(shots), -1, -1):
        text = prefix_text(fmt, question.subject, shots[:used]) + tail
        if count_tokens(text) <= max_length:
            return BuiltPrompt(text, used, False)
    return BuiltPrompt(prefix_text(fmt, question.subject, []) + tail, 0, True)
