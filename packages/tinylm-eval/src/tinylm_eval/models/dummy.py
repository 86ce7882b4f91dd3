"""A deterministic stand-in model for tests: scores from a hash of the ids, no torch, no weights.

Its tokens are UTF-8 bytes, so prompt lengths and shot truncation behave like a real tokenizer's.
The same input always gets the same score or text, and different inputs almost always differ.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence

from tinylm_eval.models.base import ChoicePrompt, GenerationOptions, Progress, cut_at_stop


def _unit(*parts: object) -> float:
    """A number in [0, 1) fixed by `parts`."""
    digest = hashlib.sha256(repr(parts).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


class DummyModel:
    def __init__(self, name: str = "dummy", *, context_length: int = 2048):
        self.identity = {"model": name, "adapter": False, "model_type": "dummy"}
        self.context_length = context_length

    def encode(self, text: str) -> list[int]:
        return list(text.encode("utf-8"))

    def choice_scores(
        self,
        prompts: Sequence[ChoicePrompt],
        spellings: Sequence[str],
        *,
        batch_size: int,
        progress: Progress | None = None,
    ) -> list[list[float]]:
        scores = [[_unit(tuple(p.ids), s) for s in spellings] for p in prompts]
        if progress:
            progress(len(prompts))
        return scores

    def loglikelihood(
        self,
        requests: Sequence[tuple[list[int], list[int]]],
        *,
        batch_size: int,
        progress: Progress | None = None,
    ) -> list[float]:
        out = []
        for context, continuation in requests:
            if not continuation:
                raise ValueError("a continuation tokenizes to nothing")
            # a log-probability per token in (-5, 0]
            out.append(-5 * _unit(tuple(context), tuple(continuation)) * len(continuation))
        if progress:
            progress(len(requests))
        return out

    def chat_prompt(self, messages: Sequence[dict]) -> str:
        """`<role>content` lines and the assistant's cue: a stand-in for a real chat template."""
        return "".join(f"<{m['role']}>{m['content']}\n" for m in messages) + "<assistant>"

    def stream(self, prompt: str, options: GenerationOptions) -> Iterator[str]:
        text = self.generate([prompt], options)[0]
        yield from (text[i : i + 3] for i in range(0, len(text), 3))

    def generate(
        self,
        prompts: Sequence[str],
        options: GenerationOptions,
        *,
        progress: Progress | None = None,
    ) -> list[str]:
        """A fixed pattern per prompt (and seed, when sampled): ' <6 hex digits>\\n' repeated."""
        out = []
        for prompt in prompts:
            salt = None if options.greedy else options.seed
            word = f" {hashlib.sha256(repr((prompt, salt)).encode()).hexdigest()[:6]}\n"
            text = (word * (options.max_new_tokens // len(word) + 1))[: options.max_new_tokens]
            out.append(cut_at_stop(text, options.stop))
        if progress:
            progress(len(prompts))
        return out
