"""The one conversation schema every SFT source becomes, and the rules a conversation must meet."""

from __future__ import annotations

from dataclasses import dataclass

from ..readers.formats import RecordError

USER = "user"
ASSISTANT = "assistant"
SYSTEM = "system"

# Reject reasons (stage "read"): a record that cannot be a conversation.
NO_ASSISTANT = "no_assistant_turn"
ROLE_ORDER = "roles_out_of_order"
UNKNOWN_ROLE = "unknown_role"
EMPTY_CONTENT = "empty_content"
NON_STRING = "non_string_field"
MISSING_FIELD = "missing_field"


@dataclass(slots=True)
class Conversation:
    """An optional system prompt, then user/assistant turns alternating, user first, assistant last.

    `id` is stable: `<source>/<native id>` or `<source>/<file>:<line>`.
    """

    id: str
    source: str
    turns: list[tuple[str, str]]  # (user, assistant) pairs
    system: str | None = None
    file: str = ""
    line: int | None = None
    group: str | None = None
    """Samples of one group are held out together (a squad source: one context); default: id."""
    evidence: dict | None = None
    """A squad source: `{context, answers}` of the question, until passages are attached."""

    def messages(self) -> list[dict[str, str]]:
        """OpenAI-style messages, as `apply_chat_template` takes them."""
        out = [{"role": SYSTEM, "content": self.system}] if self.system is not None else []
        for user, assistant in self.turns:
            out += [{"role": USER, "content": user}, {"role": ASSISTANT, "content": assistant}]
        return out


def content(value: object, where: str) -> str:
    """A turn's text: a non-blank string, stripped (outer whitespace only)."""
    if value is None:
        raise RecordError(MISSING_FIELD, f"{where} is missing")
    if not isinstance(value, str):
        raise RecordError(NON_STRING, f"{where} is {type(value).__name__}, not a string")
    if not value.strip():
        raise RecordError(EMPTY_CONTENT, f"{where} is empty")
    return value.strip()


def from_messages(messages: list[tuple[str, str]]) -> tuple[str | None, list[tuple[str, str]]]:
    """(role, text) in order -> (system, turns); raises RecordError for a malformed order.

    One system message is allowed, first. Then user and assistant alternate, starting with the
    user; the last message must be the assistant's.
    """
    system = None
    if messages and messages[0][0] == SYSTEM:
        system = messages[0][1]
        messages = messages[1:]
    if not any(role == ASSISTANT for role, _ in messages):
        raise RecordError(NO_ASSISTANT, "no assistant turn")
    turns = []
    for k, (role, text) in enumerate(messages):
        expected = USER if k % 2 == 0 else ASSISTANT
        if role != expected:
            raise RecordError(
                ROLE_ORDER, f"message {k + (system is not None)} is {role!r}, expected {expected!r}"
            )
        if role == ASSISTANT:
            turns.append((messages[k - 1][1], text))
    if len(messages) % 2:
        raise RecordError(ROLE_ORDER, "the last message is the user's, not an assistant answer")
    return system, turns
