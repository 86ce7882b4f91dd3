"""Passkey-retrieval prompts: a random number hidden at a depth of repeated filler text, the prompt
sized in the model's own tokens (the test of Mohtashami & Jaggi's landmark attention, as LongLoRA
runs it).

The same builder writes the evaluation prompts and the passkey-style training conversations, so a
model fine-tuned on the latter is asked exactly the kind of prompt it learned from.

A prompt is the instruction, `n` filler sentences with the key sentence after `round(depth * n)` of
them, and the question. `n` is the largest count whose rendered prompt (chat template or plain cue
applied) is at most the requested length in tokens, so a prompt is short of it by less than one
filler sentence's tokens.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

Encode = Callable[[str], list[int]]
Render = Callable[[str], str]
"""The user message -> the prompt text the model continues (its chat template, or a plain cue)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Language:
    instruction: str
    filler: tuple[str, ...]
    """Cycled in this order; no digits, so the key is the only number in the text."""
    needle: str
    """The key sentence; `{key}` is the key."""
    question: str
    cue: str
    """The start of the answer, for a model without a chat template."""
    joiner: str


LANGUAGES = {
    "en": Language(
        instruction="There is an important info hidden inside a lot of irrelevant text. "
        "Find it and memorize it. I will quiz you about the important information there.",
        filler=(
            "The grass is green.",
            "The sky is blue.",
            "The sun is yellow.",
            "Here we go.",
            "There and back again.",
        ),
        needle="The pass key is {key}. Remember it. {key} is the pass key.",
        question="What is the pass key?",
        cue="The pass key is",
        joiner=" ",
    ),
    "zh": Language(
        instruction="下面一大段无关的文字里藏着一条重要信息。找到它并记住，之后我会问你这条信息。",
        filler=("草是绿色的。", "天空是蓝色的。", "太阳是黄色的。", "我们出发吧。", "去了又回来。"),
        needle="通行密钥是{key}。记住它。{key}就是通行密钥。",
        question="通行密钥是多少？",
        cue="通行密钥是",
        joiner="",
    ),
}


@dataclass(frozen=True, slots=True, kw_only=True)
class PasskeyPrompt:
    length: int
    """The requested prompt length in tokens."""
    depth: float
    """The requested depth: 0 puts the key first in the filler, 1 last."""
    key: str
    message: str
    """The user message: instruction, filler with the key sentence, question."""
    text: str
    """The prompt the model continues (`render(message)`)."""
    tokens: int
    """`len(encode(text))`: at most `length`."""
    filler_sentences: int
    key_after: int
    """Filler sentences before the key sentence: `round(depth * filler_sentences)`."""


def draw_key(rng: random.Random, digits: int) -> str:
    """A key of `digits` uniform digits, leading zeros allowed: exact-match chance is 10**-digits."""
    return "".join(rng.choice("0123456789") for _ in range(digits))


def plain_render(language: str = "en") -> Render:
    """For a model without a chat template: the message, then the cue the answer follows."""
    cue = LANGUAGES[language].cue
    return lambda message: f"{message}\n{cue}"


def message_text(language: str, key: str, filler_sentences: int, key_after: int) -> str:
    lang = LANGUAGES[language]
    filler = [lang.filler[i % len(lang.filler)] for i in range(filler_sentences)]
    haystack = filler[:key_after] + [lang.needle.format(key=key)] + filler[key_after:]
    return f"{lang.instruction}\n{lang.joiner.join(haystack)}\n{lang.question}"


def build_prompt(
    encode: Encode,
    render: Render,
    *,
    length: int,
    depth: float,
    key: str,
    language: str = "en",
) -> PasskeyPrompt:
    """The prompt of at most `length` tokens with the most filler, the key at `depth`."""
    if not 0 <= depth <= 1:
        raise ValueError(f"depth must be in [0, 1], not {depth}")
    if language not in LANGUAGES:
        raise ValueError(f"language must be one of {', '.join(LANGUAGES)}, not {language!r}")

    def made(n: int) -> tuple[str, str, int]:
        message = message_text(language, key, n, round(depth * n))
        text = render(message)
        return message, text, len(encode(text))

    shortest = made(0)
    if shortest[2] > length:
        raise ValueError(
            f"a passkey prompt of {length} tokens is too short: the instruction, key and question "
            f"alone take {shortest[2]} tokens"
        )
    # why: every sentence is at least one token, so `length` sentences never fit
    low, high = 0, length  # made(low) fits, made(high) does not
    best = shortest
    while high - low > 1:
        middle = (low + high) // 2
        candidate = made(middle)
        if candidate[2] <= length:
            low, best = middle, candidate
        else:
            high = middle
    message, text, tokens = best
    return PasskeyPrompt(
        length=length,
        depth=depth,
        key=key,
        message=message,
        text=text,
        tokens=tokens,
        filler_sentences=low,
        key_after=round(depth * low),
    )


def prompt_grid(
    encode: Encode,
    render: Render,
    *,
    lengths: Sequence[int],
    depths: Sequence[float],
    trials: int,
    key_digits: int,
    seed: int,
    language: str = "en",
) -> list[PasskeyPrompt]:
    """`trials` prompts per (length, depth), each key drawn from its own seeded generator: a cell's
    prompts do not change when other lengths or depths are added."""
    prompts = []
    for length in lengths:
        for depth in depths:
            for trial in range(trials):
                rng = random.Random(f"passkey:{seed}:{length}:{depth}:{trial}")
                key = draw_key(rng, key_digits)
                prompts.append(
                    build_prompt(
                        encode, render, length=length, depth=depth, key=key, language=language
                    )
                )
    return prompts


def training_conversations(
    encode: Encode,
    *,
    lengths: Sequence[int],
    samples: int,
    key_digits: int,
    seed: int,
    language: str = "en",
) -> Iterator[dict]:
    """Passkey-style SFT records (`{"messages": [user, assistant]}`, tinylm-data's `messages`
    kind): the lengths in turn, each depth uniform in [0, 1], the answer the key alone. Lengths
    are of the user message (the training template adds its own few tokens)."""
    rng = random.Random(f"passkey-train:{seed}")
    for index in range(samples):
        key = draw_key(rng, key_digits)
        prompt = build_prompt(
            encode,
            lambda message: message,
            length=lengths[index % len(lengths)],
            depth=rng.random(),
            key=key,
            language=language,
        )
        yield {
            "id": f"passkey-{seed}-{index}",
            "messages": [
                {"role": "user", "content": prompt.message},
                {"role": "assistant", "content": key},
            ],
        }
