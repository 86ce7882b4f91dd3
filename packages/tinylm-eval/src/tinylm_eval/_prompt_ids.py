"""Token ids of k-shot prompts without tokenizing each subject's few-shot prefix once per question.

A 5-shot prompt is mostly its subject's header and exemplars: the same text for every question of the
subject. That prefix is tokenized once per subject and shot count, up to the start of its last line
(the last exemplar's answer line, e.g. "Answer: A\n\n"); the last line and the question are tokenized
together, per question. Cutting at a line start that is followed by the same answer line for every
question keeps byte-level BPE tokenizers (Qwen, GPT-2) from seeing the cut: no pre-token crosses it.

The joined ids are compared with the tokenization of the whole prompt text once per subject and shot
count. A tokenizer whose pieces do not join up (one that marks the start of every text, for instance)
gets every prompt of the subject tokenized whole, as the reference scripts do. Shots are dropped from
the end until the prompt fits `max_length`; a prompt too long even without shots keeps its last
`max_length` tokens and is marked truncated.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from tinylm_eval.data import Question
from tinylm_eval.prompts import PromptFormat, prefix_text

logger = logging.getLogger(__name__)

Encode = Callable[[str], list[int]]


@dataclass(frozen=True, slots=True)
class PromptIds:
    ids: list[int]
    shots_used: int
    truncated: bool  # even with 0 shots the prompt was too long; its head was cut


def subject_prompt_ids(
    encode: Encode,
    fmt: PromptFormat,
    subject: str,
    shots: list[Question],
    questions: list[Question],
    max_length: int,
) -> list[PromptIds]:
    """The prompt ids of every question of one subject, equal to `encode(whole prompt text)`."""
    joined = _joined_ids(encode, fmt, subject, shots, questions, max_length)
    if joined is not None:
        return joined
    logger.info("%s: prompt pieces do not tokenize like the whole text; tokenizing whole", subject)
    return [_whole_ids(encode, fmt, subject, shots, q, max_length) for q in questions]


def _joined_ids(encode, fmt, subject, shots, questions, max_length) -> list[PromptIds] | None:
    heads: dict[int, tuple[list[int], str]] = {}  # shots -> (ids of the prefix head, the rest)

    def pieces(k: int, tail: str) -> list[int] | None:
        if k not in heads:
            prefix = prefix_text(fmt, subject, shots[:k])
            cut = prefix.rstrip("\n").rfind("\n") + 1  # the start of the last line
            heads[k] = (encode(prefix[:cut]), prefix[cut:])
            ids = heads[k][0] + encode(heads[k][1] + tail)
            # why: one check per shot count stands for the subject (the text after the cut is the same)
            return ids if ids == encode(prefix + tail) else None
        head, rest = heads[k]
        return head + encode(rest + tail)

    prompts = []
    for question in questions:
        tail = fmt.render_question(question)
        for k in range(len(shots), -1, -1):
            ids = pieces(k, tail)
            if ids is None:
                return None
            if len(ids) <= max_length:
                prompts.append(PromptIds(ids, k, False))
                break
        else:
            prompts.append(_truncated(encode, fmt, subject, tail, max_length))
    return prompts


def _whole_ids(encode, fmt, subject, shots, question, max_length) -> PromptIds:
    tail = fmt.render_question(question)
    for k in range(len(shots), -1, -1):
        ids = encode(prefix_text(fmt, subject, shots[:k]) + tail)
        if len(ids) <= max_length:
            return PromptIds(ids, k, False)
    return _truncated(encode, fmt, subject, tail, max_length)


def _truncated(encode, fmt, subject, tail, max_length) -> PromptIds:
    return PromptIds(encode(prefix_text(fmt, subject, []) + tail)[-max_length:], 0, True)
