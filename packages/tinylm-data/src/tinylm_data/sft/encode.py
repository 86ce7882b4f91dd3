"""Conversation -> token ids and label mask, turn by turn, with the joined-equals-whole check.

Each piece of the rendered conversation is tokenized on its own, so every token belongs to
exactly one piece and the mask is exact; the pieces joined must equal the tokenization of the
whole rendered text (else a merge across a piece boundary would make the trained ids differ from
what the model sees at inference), or the sample is rejected (`token_boundary`).

Too long for `max_length`: whole exchanges are dropped, keeping the earliest that fit
(`truncation: earliest`) or the system prompt plus the latest (`latest`); when not even one
exchange fits, the one kept (first or last) is cut inside its assistant text, which then has no
terminator (the answer did not end there). A sample left with no trainable token is rejected.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from tokenizers import Tokenizer

from .conversation import Conversation
from .templates import Template

TRUNCATIONS = ("earliest", "latest")
TOKEN_BOUNDARY = "token_boundary"
NO_TRAINABLE = "no_trainable_tokens"


class EncodeError(Exception):
    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason, self.detail = reason, detail


@dataclass(slots=True)
class Encoded:
    tokens: np.ndarray  # (n,) int32
    loss_mask: np.ndarray  # (n,) int8, 1 on assistant tokens and their terminator
    turns: int  # exchanges kept
    dropped_turns: int  # exchanges dropped to fit max_length
    cut_answer: bool  # the kept exchange's answer was cut inside


class ConversationEncoder:
    def __init__(
        self,
        backend: Tokenizer,
        template: Template,
        *,
        eos_token: str,
        max_length: int,
        truncation: str = "earliest",
    ) -> None:
        if truncation not in TRUNCATIONS:
            raise ValueError(f"truncation must be one of {', '.join(TRUNCATIONS)}")
        self.backend, self.template, self.eos_token = backend, template, eos_token
        self.max_length, self.truncation = max_length, truncation

    def render(self, conversation: Conversation) -> str:
        return "".join(text for text, _ in self.template.pieces(conversation, self.eos_token))

    def units(self, conversation: Conversation) -> list[list[tuple[np.ndarray, bool]]]:
        """The ids of each piece, grouped per unit: the system prompt (if any), then each exchange.

        EncodeError(token_boundary) when the pieces tokenized apart differ from the whole."""
        t = self.template
        units: list[list[tuple[str, bool]]] = []
        if conversation.system is not None:
            units.append([(t.system_piece(conversation.system), False)])
        units += [t.turn_pieces(u, a, self.eos_token) for u, a in conversation.turns]
        flat = [piece for unit in units for piece in unit]
        texts = [text for text, _ in flat]
        encodings = self.backend.encode_batch_fast(
            [*texts, "".join(texts)], add_special_tokens=False
        )
        piece_ids = [np.asarray(e.ids, dtype=np.int32) for e in encodings[:-1]]
        whole = np.asarray(encodings[-1].ids, dtype=np.int32)
        joined = np.concatenate(piece_ids) if piece_ids else whole[:0]
        if not np.array_equal(joined, whole):
            at = (
                int(np.argmax(joined[: len(whole)] != whole[: len(joined)]))
                if len(joined) and len(whole)
                else 0
            )
            raise EncodeError(
                TOKEN_BOUNDARY, f"the pieces tokenized apart differ from the whole at token {at}"
            )
        grouped, k = [], 0
        for unit in units:
            grouped.append([(piece_ids[k + j], trainable) for j, (_, trainable) in enumerate(unit)])
            k += len(unit)
        return grouped

    def encode(self, conversation: Conversation) -> Encoded:
        grouped = self.units(conversation)
        has_system = conversation.system is not None
        system = grouped[:1] if has_system else []
        exchanges = grouped[1:] if has_system else grouped
        base = sum(len(ids) for unit in system for ids, _ in unit)
        lengths = [sum(len(ids) for ids, _ in unit) for unit in exchanges]
        kept = self._fit(base, lengths)
        cut = False
        if not kept:
            index = 0 if self.truncation == "earliest" else len(exchanges) - 1
            exchanges[index] = self._cut(exchanges[index], self.max_length - base)
            kept, cut = [index], True
        chosen = system + [exchanges[i] for i in kept]
        tokens = np.concatenate([ids for unit in chosen for ids, _ in unit])
        mask = np.concatenate(
            [np.full(len(ids), int(tr), dtype=np.int8) for unit in chosen for ids, tr in unit]
        )
        mask[0] = 0  # a sample is never predicted from the one before it
        if not mask.any():
            raise EncodeError(
                NO_TRAINABLE, f"no assistant token fits in max_length {self.max_length}"
            )
        return Encoded(tokens, mask, len(kept), len(exchanges) - len(kept), cut)

    def _fit(self, base: int, lengths: list[int]) -> list[int]:
        """Indices of the exchanges kept: whole ones, earliest or latest first, within the limit."""
        room = self.max_length - base
        order = (
            range(len(lengths)) if self.truncation == "earliest" else reversed(range(len(lengths)))
        )
        kept = []
        for i in order:
            if lengths[i] > room:
                break
            kept.append(i)
            room -= lengths[i]
        return sorted(kept)

    @staticmethod
    def _cut(unit: list[tuple[np.ndarray, bool]], room: int) -> list[tuple[np.ndarray, bool]]:
        """The exchange within `room` tokens: its prompt whole, the answer cut, nothing after it."""
        out, left = [], room
        for ids, trainable in unit:
            if not trainable:
                if len(ids) > left:
                    out.append((ids[: max(left, 0)], False))
                    break
                out.append((ids, False))
                left -= len(ids)
            else:
                out.append((ids[: max(left, 0)], True))
                break
        return out
