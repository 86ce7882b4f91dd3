"""The model interface every task scores through: token ids in, scores or text out.

Prompts are token ids from the model's own `encode`, so a task can fit shots to a token limit and
two implementations score exactly the ids the task built. Generation takes and returns text.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

Progress = Callable[[int], None]


@dataclass(frozen=True, slots=True)
class ChoicePrompt:
    """A multiple-choice prompt whose next token is one of the answer spellings."""

    ids: list[int]
    # Prompts with the same key start with the same long prefix (a subject's header and exemplars);
    # an implementation may run that prefix once. None: score this prompt on its own.
    shared_prefix_key: Hashable | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class GenerationOptions:
    max_new_tokens: int = 256
    """Generated tokens at most, stop strings included."""
    stop: tuple[str, ...] = ()
    """The text is cut before the first of these; generation ends once one appears."""
    temperature: float = 0.0
    """0: greedy; above 0: sampled at this temperature."""
    top_p: float = 1.0
    """Sampled only: the nucleus of this probability mass."""
    top_k: int = 0
    """Sampled only: draw from the k likeliest tokens; 0: no limit."""
    repetition_penalty: float = 1.0
    """Above 1: the logits of tokens already in the prompt or answer are penalised (CTRL)."""
    seed: int | None = None
    """Sampled only: the same seed gives the same text."""

    def __post_init__(self):
        if self.max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be >= 1, not {self.max_new_tokens}")
        if self.temperature < 0 or not 0 < self.top_p <= 1:
            raise ValueError("temperature >= 0 and 0 < top_p <= 1 are required")
        if self.top_k < 0:
            raise ValueError(f"top_k must be >= 0, not {self.top_k}")
        if self.repetition_penalty <= 0:
            raise ValueError(f"repetition_penalty must be > 0, not {self.repetition_penalty}")
        if any(not s for s in self.stop):
            raise ValueError("a stop string must not be empty")

    @property
    def greedy(self) -> bool:
        return self.temperature == 0


@runtime_checkable
class LanguageModel(Protocol):
    """What tasks need of a model. `identity` describes it in every report."""

    identity: dict

    def encode(self, text: str) -> list[int]:
        """The token ids of `text`, without special tokens."""
        ...

    def choice_scores(
        self,
        prompts: Sequence[ChoicePrompt],
        spellings: Sequence[str],
        *,
        batch_size: int,
        progress: Progress | None = None,
    ) -> list[list[float]]:
        """Per prompt, one score per answer spelling (e.g. " A" .. " D") as its next token; higher
        is likelier. `progress` is called with the number of prompts scored."""
        ...

    def loglikelihood(
        self,
        requests: Sequence[tuple[list[int], list[int]]],
        *,
        batch_size: int,
        progress: Progress | None = None,
    ) -> list[float]:
        """Per (context ids, continuation ids), the summed log-probability of the continuation
        following the context. `progress` is called with the number of requests scored."""
        ...

    def generate(
        self,
        prompts: Sequence[str],
        options: GenerationOptions,
        *,
        progress: Progress | None = None,
    ) -> list[str]:
        """Per prompt, the generated continuation (the prompt not repeated), cut at a stop string
        (those of `options` and the model's own). `progress` is called with the prompts done."""
        ...

    def stream(self, prompt: str, options: GenerationOptions) -> Iterator[str]:
        """The continuation of one prompt in pieces as it is generated; joined, they equal
        `generate([prompt], options)[0]`. Closing the iterator early ends the generation."""
        ...

    def chat_prompt(self, messages: Sequence[dict]) -> str:
        """`messages` (`{"role", "content"}`) in the model's own chat template, ending with the
        cue for the assistant's answer. An error when the model has no template."""
        ...

    @property
    def context_length(self) -> int:
        """Tokens the model attends over: prompt and answer together."""
        ...


def cut_at_stop(text: str, stop: Sequence[str]) -> str:
    """`text` up to the earliest occurrence of any stop string."""
    ends = [i for i in (text.find(s) for s in stop) if i >= 0]
    return text[: min(ends)] if ends else text


def stream_cut_at_stop(pieces: Iterable[str], stop: Sequence[str]) -> Iterator[str]:
    """The pieces of a text as they come, cut like `cut_at_stop` of the whole: text that may be the
    start of a stop string is held back until the next piece shows whether it is one."""
    if not stop:
        yield from (p for p in pieces if p)
        return
    hold = max(len(s) for s in stop) - 1
    text, sent = "", 0
    for piece in pieces:
        text += piece
        # why: what was sent holds no stop string, and none can start in it: a stop starting
        # before len(text) - hold would already be whole in `text`
        rest = cut_at_stop(text[sent:], stop)
        if len(rest) < len(text) - sent:
            if rest:
                yield rest
            return
        safe = len(text) - hold
        if safe > sent:
            yield text[sent:safe]
            sent = safe
    if len(text) > sent:
        yield text[sent:]
