"""Prompt formats (subject header, k-shot exemplars, question, A-D, answer cue) and shot truncation.

`mmlu` is the format of Hendrycks et al. and of Baichuan's MMLU script: the cue is "Answer:" and the
exemplar answers read "Answer: A", so the letter that follows the cue is the token " A" (space-prefixed).
`ceval` (C-Eval paper / Baichuan C-Eval script) and `cmmlu` (CMMLU paper) end the cue with a full-width
colon and the answer is the bare token "A". Scoring reads the same spelling the exemplars use. The
C-Eval and CMMLU headers name the subject in Chinese ("以下是中国关于高中地理考试的单项选择题…").
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass

from tinylm_eval.data import LETTERS, Question
from tinylm_eval.subjects import ZH_NAMES

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class PromptFormat:
    name: str
    header: str
    question_prefix: str
    cue: str
    answer_separator: str  # between the cue and the letter: " " for "Answer: A", "" for "答案：A"

    def render_question(self, question: Question) -> str:
        options = "".join(
            f"\n{letter}. {text}" for letter, text in zip(LETTERS, question.choices, strict=True)
        )
        return f"{self.question_prefix}{question.question}{options}\n{self.cue}"

    def render_exemplar(self, question: Question) -> str:
        return f"{self.render_question(question)}{self.answer_separator}{question.answer}\n\n"

    def answer_text(self, letter: str) -> str:
        return f"{self.answer_separator}{letter}"


FORMATS = {
    "mmlu": PromptFormat(
        "mmlu",
        "The following are multiple choice questions (with answers) about {subject}.\n\n",
        "",
        "Answer:",
        " ",
    ),
    "ceval": PromptFormat(
        "ceval",
        "以下是中国关于{subject}考试的单项选择题，请选出其中的正确答案。\n\n",
        "",
        "答案：",
        "",
    ),
    "cmmlu": PromptFormat(
        "cmmlu",
        "以下是关于{subject}的单项选择题，请直接给出正确答案的选项。\n\n",
        "题目：",
        "答案是：",
        "",
    ),
}
DEFAULT_FORMAT = {"mmlu": "mmlu", "ceval": "ceval", "cmmlu": "cmmlu"}


def subject_title(subject: str, prompt_format: str = "mmlu") -> str:
    """The subject as the header names it: its Chinese name in the C-Eval and CMMLU formats (as their
    releases' scripts write it), else the file name with spaces ("high school geography")."""
    return ZH_NAMES.get(prompt_format, {}).get(subject) or subject.replace("_", " ")


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
    header = fmt.header.format(subject=subject_title(subject, fmt.name))
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
