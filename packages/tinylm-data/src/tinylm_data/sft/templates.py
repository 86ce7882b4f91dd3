"""Chat templates: how a conversation is laid out as text, which parts are trained, and its Jinja.

A template renders a conversation as a list of pieces `(text, trainable)`; joined, they are the
text the model sees. The same layout is written as a Jinja `chat_template` for the tokenizer, so
`tokenizer.apply_chat_template(messages, add_generation_prompt=True)` gives exactly the prompt
of training (tests check it token for token).

- `tinylm`, the reference project's seed template and the default for models pretrained here
  (every token of its scaffolding occurs in pretraining text):
  `Human:\\n{user}\\nAssistant:\\n{assistant}<eos>` per turn, a system prompt as
  `System:\\n{system}\\n` first. A model stops at `<eos>` (and, as a safety net, at a stray
  `\\nHuman:`).
- `chatml`, Qwen's: `<|im_start|>{role}\\n{content}<|im_end|>\\n` per message. Its two markers
  never occur in pretraining data, so their embeddings are untrained until SFT.

Trained: each assistant text and the terminator after it (`<eos>` / `<|im_end|>`); nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass

from .conversation import Conversation

Piece = tuple[str, bool]


@dataclass(frozen=True, slots=True)
class Template:
    name: str
    special_tokens: tuple[str, ...]
    """Tokens the template needs as single special tokens (`<eos>` is the tokenizer's own)."""
    stop_strings: tuple[str, ...]

    def stop_tokens(self, eos_token: str) -> list[str]:
        return ["<|im_end|>", eos_token] if self.name == "chatml" else [eos_token]

    def system_piece(self, system: str) -> str:
        if self.name == "chatml":
            return f"<|im_start|>system\n{system}<|im_end|>\n"
        return f"System:\n{system}\n"

    def turn_pieces(self, user: str, assistant: str, eos_token: str) -> list[Piece]:
        """One user/assistant exchange: scaffolding and user text untrained, the answer trained."""
        if self.name == "chatml":
            return [
                (f"<|im_start|>user\n{user}<|im_end|>\n<|im_start|>assistant\n", False),
                (f"{assistant}<|im_end|>", True),
                ("\n", False),
            ]
        return [(f"Human:\n{user}\nAssistant:\n", False), (f"{assistant}{eos_token}", True)]

    def generation_prompt(self, user: str) -> str:
        """What follows the history when the model is to answer `user`."""
        return self.turn_pieces(user, "", "")[0][0]

    def pieces(self, conversation: Conversation, eos_token: str) -> list[Piece]:
        out: list[Piece] = []
        if conversation.system is not None:
            out.append((self.system_piece(conversation.system), False))
        for user, assistant in conversation.turns:
            out += self.turn_pieces(user, assistant, eos_token)
        return out

    def jinja(self, eos_token: str) -> str:
        """The template as a Jinja `chat_template` (the eos token written in, as trained)."""
        if self.name == "chatml":
            return (
                "{%- for message in messages -%}"
                "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
                "{%- endfor -%}"
                "{%- if add_generation_prompt -%}{{ '<|im_start|>assistant\\n' }}{%- endif -%}"
            )
        eos = eos_token.replace("'", "\\'")
        return (
            "{%- for message in messages -%}"
            "{%- if message['role'] == 'system' -%}{{ 'System:\\n' + message['content'] + '\\n' }}"
            "{%- elif message['role'] == 'user' -%}{{ 'Human:\\n' + message['content'] + '\\n' }}"
            "{%- elif message['role'] == 'assistant' -%}"
            "{{ 'Assistant:\\n' + message['content'] + '" + eos + "' }}"
            "{%- endif -%}"
            "{%- endfor -%}"
            "{%- if add_generation_prompt -%}{{ 'Assistant:\\n' }}{%- endif -%}"
        )


TEMPLATES = {
    "tinylm": Template(name="tinylm", special_tokens=(), stop_strings=("\nHuman:",)),
    "chatml": Template(
        name="chatml", special_tokens=("<|im_start|>", "<|im_end|>"), stop_strings=()
    ),
}
