"""A preference build: the chat-data builder (`sft/builder.py`) with preference records, pair
checks, dedup on prompt + both answers, and `tinylm-preference-pairs` shards for DPO.

The prompt is everything up to where the last answer starts (its template scaffolding
included); each answer is the last assistant piece the template trains on (its terminator
included), so the label mask of `prompt + answer` is 0 on the prompt, 1 on the answer.

Too long for `max_length` (prompt + the longer answer): the oldest whole exchanges of the prompt
go first (the system prompt stays), then `tinylm_shards.truncate_pair` cuts the prompt's oldest
tokens and, last, the answers' ends. Both are counted.
"""

from __future__ import annotations

import dataclasses
import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from tinylm_shards import (
    PREFERENCE_PAIRS,
    PairWriter,
    PreferencePair,
    list_array,
    list_parts,
    truncate_pair,
)

from ..clean import Cleaner
from ..progress import Progress
from ..sft.build import EmptySftBuild, _dedup_text
from ..sft.build import _clean as _clean_conversation
from ..sft.builder import (
    SPLITS,
    ChatKind,
    ChatResult,
    ChatTokenizer,
    SourceStats,
    conversation_from_json,
    conversation_json,
    encoded_schema,
    run_chat_build,
)
from ..sft.conversation import EMPTY_CONTENT
from ..sft.encode import ConversationEncoder, EncodeError
from ..sft.templates import TEMPLATES
from .config import PrefConfig
from .readers import EMPTY_ANSWER, PROMPT_TOO_LONG, SAME_ANSWERS, PrefRecord, read_pairs

TRUNCATION_COUNTS = (
    "prompt_truncated_pairs",
    "prompt_truncated_tokens",
    "answer_truncated_pairs",
    "answer_truncated_tokens",
)
PrefResult = ChatResult


class EmptyPrefBuild(EmptySftBuild):
    """No pair survived: publishing would hand training an empty dataset."""


@dataclass(slots=True)
class EncodedPair:
    pair: PreferencePair
    dropped_turns: int


class PairEncoder:
    """PrefRecord -> a PreferencePair within max_length, through the SFT conversation encoder."""

    def __init__(
        self, encoder: ConversationEncoder, *, max_length: int, max_prompt_length: int | None
    ):
        self.encoder, self.max_length, self.max_prompt_length = (
            encoder,
            max_length,
            max_prompt_length,
        )

    def prompt_and_answer(
        self, conversation
    ) -> tuple[list[np.ndarray], list[np.ndarray], np.ndarray]:
        """(system prompt ids if any, [each earlier exchange's ids..., the last user turn's], the
        answer's ids with its terminator)."""
        units = self.encoder.units(conversation)
        has_system = conversation.system is not None
        lead = [np.concatenate([ids for ids, _ in u]) for u in units[: int(has_system)]]
        history = [np.concatenate([ids for ids, _ in u]) for u in units[int(has_system) : -1]]
        last = units[-1]
        answer_at = next(k for k, (_, trainable) in enumerate(last) if trainable)
        last_prompt = np.concatenate([ids for ids, _ in last[:answer_at]])
        return lead, [*history, last_prompt], last[answer_at][0]

    def encode(self, record: PrefRecord) -> EncodedPair:
        lead, prompt_parts, chosen = self.prompt_and_answer(record.conversation)
        other_lead, other_parts, rejected = self.prompt_and_answer(record.rejected_conversation())
        assert all(map(np.array_equal, [*lead, *prompt_parts], [*other_lead, *other_parts]))
        history, last = prompt_parts[:-1], prompt_parts[-1]
        limit = self.max_prompt_length
        least = sum(map(len, lead)) + len(last)
        if limit is not None and least > limit:
            raise EncodeError(
                PROMPT_TOO_LONG,
                f"the last user turn is {least} prompt tokens, max_prompt_length {limit}",
            )
        # Oldest whole exchanges first (the system prompt and the last user turn stay).
        answer = max(len(chosen), len(rejected))
        full = least + sum(map(len, history))
        dropped = 0
        while history and (full + answer > self.max_length or (limit is not None and full > limit)):
            full -= len(history[0])
            history, dropped = history[1:], dropped + 1
        prompt = np.concatenate([*lead, *history, last])
        pair = truncate_pair(record.id, prompt, chosen, rejected, max_length=self.max_length)
        removed = sum(map(len, prompt_parts[:-1])) - sum(map(len, history))
        pair = dataclasses.replace(pair, prompt_truncated=pair.prompt_truncated + removed)
        return EncodedPair(pair, dropped)


def run_pref_build(
    config: PrefConfig, base: Path, out_root: Path, progress: Progress | None = None, **options
) -> ChatResult:
    """`run_chat_build` of a preference config (options: allow_empty, workers)."""
    return run_chat_build(PrefKind(config, base), base, out_root, progress, **options)


_INT_COLUMNS = ("prompt_truncated", "answer_truncated")
_ID_COLUMNS = ("prompt_ids", "chosen_ids", "rejected_ids")


class PrefKind(ChatKind):
    """Preference records in; pairs (prompt, chosen and rejected ids) out."""

    format = PREFERENCE_PAIRS
    reader = staticmethod(read_pairs)
    noun = "pair"
    empty_error = EmptyPrefBuild
    encoded_schema = encoded_schema(
        *((name, pa.list_(pa.int32())) for name in _ID_COLUMNS),
        *((name, pa.int32()) for name in _INT_COLUMNS),
    )
    config: PrefConfig

    def prepare(self, record: PrefRecord, cleaner: Cleaner, source):
        cleaned, changes, empty = _clean(record, cleaner, source.system_prompt)
        if cleaned is None:
            return None, changes, ("clean", empty, "a text is empty after cleaning")
        if cleaned.chosen == cleaned.rejected:
            return None, changes, ("pair", SAME_ANSWERS, "the two answers are the same")
        return cleaned, changes, None

    def dedup_text(self, record: PrefRecord) -> str:
        return _dedup_text(record.conversation) + "\n\x00\n" + record.rejected

    def to_json(self, record: PrefRecord) -> str:
        return json.dumps(
            {"conversation": conversation_json(record.conversation), "rejected": record.rejected},
            ensure_ascii=False,
        )

    def from_json(self, text: str) -> PrefRecord:
        data = json.loads(text)
        return PrefRecord(conversation_from_json(data["conversation"]), data["rejected"])

    def encoder(self, tokenizer: ChatTokenizer):
        config = self.config
        encoder = PairEncoder(
            ConversationEncoder(
                tokenizer.backend,
                TEMPLATES[config.template],
                eos_token=tokenizer.eos_token,
                max_length=1 << 30,
            ),
            max_length=config.max_length,
            max_prompt_length=config.max_prompt_length,
        )

        def encode(record: PrefRecord, validation: bool, counts: Counter) -> dict:
            encoded = encoder.encode(record)
            pair, split = encoded.pair, SPLITS[validation]
            counts["kept"] += 1
            counts[f"{split}_pairs"] += 1
            counts["dropped_turns"] += encoded.dropped_turns
            counts[f"{split}_tokens"] += _tokens(pair)
            for name, value in _truncation(pair).items():
                counts[f"{split}_{name}"] += value
            return {"id": record.id, "validation": validation, "pair": pair}

        return encode

    def encoded_table(self, rows: list[dict]) -> pa.Table:
        pairs = [r["pair"] for r in rows]
        return pa.Table.from_pydict(
            {
                "id": pa.array([r["id"] for r in rows], pa.string()),
                "validation": pa.array([r["validation"] for r in rows], pa.bool_()),
                **{n: list_array([getattr(p, n) for p in pairs], pa.int32()) for n in _ID_COLUMNS},
                **{n: pa.array([getattr(p, n) for p in pairs], pa.int32()) for n in _INT_COLUMNS},
            },
            schema=self.encoded_schema,
        )

    def sink(self, staging: Path, split: str, tokenizer: ChatTokenizer) -> _PairSink:
        return _PairSink(
            PairWriter(
                staging / ("shards" if split == "train" else split),
                max_length=self.config.max_length,
                rows_per_shard=self.config.rows_per_shard,
                root=staging,
            )
        )

    def stats(self, stats: dict[str, SourceStats], sinks) -> dict[str, Any]:
        sources = {}
        totals: Counter = Counter()
        splits = {split: Counter() for split in SPLITS}
        for name, s in stats.items():
            c = s.counts
            accounting = s.accounting(name, "pair")
            totals.update(accounting)
            for split in SPLITS:
                splits[split]["pairs"] += c[f"{split}_pairs"]
                splits[split]["tokens"] += c[f"{split}_tokens"]
                for k in TRUNCATION_COUNTS:
                    splits[split][k] += c[f"{split}_{k}"]
            sources[name] = {
                "accounting": accounting,
                "removed": {stage: dict(sorted(r.items())) for stage, r in s.removed.items()},
                "pairs": {split: c[f"{split}_pairs"] for split in SPLITS},
                "tokens": {split: c[f"{split}_tokens"] for split in SPLITS},
                "dropped_turns": c["dropped_turns"],
                **{k: sum(c[f"{split}_{k}"] for split in SPLITS) for k in TRUNCATION_COUNTS},
                "clean_changes": s.clean_changes(),
            }
        return {
            "sources": sources,
            "total": {k: totals[k] for k in ("in", "kept", "rejected", "duplicates")},
            "splits": {
                split: {k: splits[split][k] for k in ("pairs", "tokens", *TRUNCATION_COUNTS)}
                for split in SPLITS
            },
        }

    def manifest_fields(self, stats_data, sinks, tokenizer: ChatTokenizer) -> dict[str, Any]:
        config, template = self.config, TEMPLATES[self.config.template]
        pairs = {s: stats_data["splits"][s]["pairs"] for s in SPLITS}
        return {
            "num_pairs": pairs["train"],
            "counts": _manifest_counts(stats_data["splits"]["train"]),
            "preference": {
                "template": template.name,
                "max_length": config.max_length,
                "max_prompt_length": config.max_prompt_length,
                "stop_tokens": template.stop_tokens(tokenizer.eos_token),
                "stop_strings": list(template.stop_strings),
                "pairs": pairs,
                "added_special_tokens": tokenizer.added,
                "chat_template": tokenizer.chat_template,
            },
            "sources": {name: s["accounting"] for name, s in stats_data["sources"].items()},
            "shards": sinks["train"].shards,
            "splits": {
                "validation": {
                    "shards": sinks["validation"].shards,
                    "num_blocks": pairs["validation"],
                    "counts": _manifest_counts(stats_data["splits"]["validation"]),
                }
            },
        }


class _PairSink:
    """Encoded pairs -> shard files."""

    def __init__(self, writer: PairWriter) -> None:
        self.writer = writer
        self.shards: list[dict] = []

    def add(self, batch: pa.RecordBatch) -> list[int]:
        ids = batch.column("id").to_pylist()
        parts = {n: list_parts(batch.column(n)) for n in _ID_COLUMNS}
        counts = {n: batch.column(n).to_pylist() for n in _INT_COLUMNS}
        lengths = []
        for k, pair_id in enumerate(ids):
            arrays = {n: v[o[k] : o[k + 1]] for n, (o, v) in parts.items()}
            pair = PreferencePair(
                pair_id=pair_id, **arrays, **{n: counts[n][k] for n in _INT_COLUMNS}
            )
            self.writer.add(pair)
            lengths.append(pair.length)
        return lengths

    def close(self) -> None:
        self.shards = self.writer.close()


def _clean(
    record: PrefRecord, cleaner: Cleaner, default_system: str | None
) -> tuple[PrefRecord | None, Counter, str]:
    """Every text through the source's cleaning rules, as for SFT; (None, changes, reason) when
    one is left empty."""
    conversation, changes = _clean_conversation(record.conversation, cleaner, default_system)
    rejected, more = cleaner(record.rejected)
    changes.update(more)
    rejected = rejected.strip()
    if not rejected or (conversation is None and not cleaner(record.chosen)[0].strip()):
        return None, changes, EMPTY_ANSWER
    if conversation is None:
        return None, changes, EMPTY_CONTENT
    return PrefRecord(conversation, rejected), changes, ""


def _tokens(pair: PreferencePair) -> int:
    """Tokens a model reads for the pair: the prompt twice, and each answer."""
    return len(pair.prompt_ids) * 2 + len(pair.chosen_ids) + len(pair.rejected_ids)


def _truncation(pair: PreferencePair) -> dict[str, int]:
    return {
        "prompt_truncated_pairs": int(pair.prompt_truncated > 0),
        "prompt_truncated_tokens": pair.prompt_truncated,
        "answer_truncated_pairs": int(pair.answer_truncated > 0),
        "answer_truncated_tokens": pair.answer_truncated,
    }


def _manifest_counts(split: dict[str, int]) -> dict[str, int]:
    return {"pairs": split["pairs"], **{k: split[k] for k in TRUNCATION_COUNTS}}
