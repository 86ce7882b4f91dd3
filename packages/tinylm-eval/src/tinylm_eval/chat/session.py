"""A conversation with a model: its messages in the model's own chat template, the oldest turns
dropped to fit the context, and the answer streamed through `LanguageModel.stream`."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence

from tinylm_eval.models.base import GenerationOptions, LanguageModel

logger = logging.getLogger(__name__)

ROLES = ("system", "user", "assistant")


class HistoryError(ValueError):
    """The conversation cannot be answered: malformed messages, or the last message alone does
    not fit the model's context minus the answer budget."""


def check_messages(messages: Sequence[dict], where: str = "messages") -> list[dict]:
    """`messages` as `{"role", "content"}` dicts: an optional system message first, then turns that
    end with a user message; a clear error naming the first bad one otherwise."""
    checked = []
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or set(message) - {"role", "content"}:
            raise HistoryError(f"{where}[{i}]: a message is an object with role and content")
        role, content = message.get("role"), message.get("content")
        if role not in ROLES or (role == "system" and i > 0):
            raise HistoryError(
                f"{where}[{i}]: role {role!r} (system first only, then user or assistant)"
            )
        if not isinstance(content, str):
            raise HistoryError(f"{where}[{i}]: content must be a string")
        checked.append({"role": role, "content": content})
    if not checked or checked[-1]["role"] != "user":
        raise HistoryError(f"{where}: the last message must be the user's")
    return checked


def fit_history(
    model: LanguageModel, messages: Sequence[dict], answer_tokens: int
) -> tuple[list[dict], str]:
    """(the messages kept, their prompt): whole turns dropped from the oldest until the prompt and
    `answer_tokens` fit `model.context_length`. A system message is always kept."""
    messages = check_messages(messages)
    system = messages[:1] if messages[0]["role"] == "system" else []
    turns = messages[len(system) :]
    budget = model.context_length - answer_tokens
    if budget < 1:
        raise HistoryError(
            f"max_new_tokens {answer_tokens} leaves no room for a prompt in the model's "
            f"context of {model.context_length} tokens"
        )
    while True:
        prompt = model.chat_prompt(system + turns)
        length = len(model.encode(prompt))
        if length <= budget:
            return system + turns, prompt
        # why: a turn starts at a user message, so drop through the next one's start
        starts = [i for i, m in enumerate(turns) if m["role"] == "user" and i > 0]
        if not starts:
            raise HistoryError(
                f"the message is too long: its prompt is {length} tokens, and the model's context "
                f"of {model.context_length} minus {answer_tokens} for the answer leaves {budget}"
            )
        turns = turns[starts[0] :]


def reply(
    model: LanguageModel, messages: Sequence[dict], options: GenerationOptions
) -> tuple[list[dict], Iterator[str]]:
    """(the messages answered, the answer's pieces as they are generated)."""
    kept, prompt = fit_history(model, messages, options.max_new_tokens)
    dropped = len(messages) - len(kept)
    if dropped:
        logger.info("dropped the %d oldest messages to fit the context", dropped)
    return kept, model.stream(prompt, options)


class ChatSession:
    """The terminal's conversation: `ask` streams an answer and keeps both turns; `reset` forgets
    them (the system prompt stays)."""

    def __init__(
        self, model: LanguageModel, options: GenerationOptions, *, system: str | None = None
    ):
        self.model, self.options = model, options
        self.system = [{"role": "system", "content": system}] if system else []
        self.turns: list[dict] = []

    def ask(self, text: str) -> Iterator[str]:
        """The answer to `text` in pieces; once it is whole, both turns join the history (a
        conversation that no longer fits loses its oldest turns)."""
        kept, pieces = reply(self.model, self.system + self.turns + [_user(text)], self.options)
        answer = []
        for piece in pieces:
            answer.append(piece)
            yield piece
        self.turns = kept[len(self.system) :] + [{"role": "assistant", "content": "".join(answer)}]

    def reset(self) -> None:
        self.turns = []


def _user(text: str) -> dict:
    return {"role": "user", "content": text}
