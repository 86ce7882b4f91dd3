"""An SFT build: the chat-data builder (`builder.py`) with conversations as records, augmented
and encoded with the label mask, packed into `tinylm-sft-blocks` shards.

Output: OUT/<name>/<version>/ in the `tinylm-sft-blocks` format (docs/shard-format.md), appearing
in one rename when complete; OUT/<name>/LATEST names it. A killed build rerun resumes per input
file (see `builder.py`) and ends with the same bytes.
"""

from __future__ import annotations

import dataclasses
import json
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from tinylm_shards import SFT_BLOCKS, ShardWriter, list_array, list_parts

from ..clean import Cleaner
from ..config import ConfigError
from ..pack import make_packer
from ..progress import Progress
from ..rag.raft import (
    ANSWER_DOES_NOT_FIT,
    RETRIEVAL,
    RaftAttacher,
    retrieval_stats,
    squad_conversations,
)
from .augment import augment_instruction
from .builder import (
    SPLITS,
    ChatKind,
    ChatResult,
    ChatTokenizer,
    EmptyChatBuild,
    SourceStats,
    conversation_from_json,
    conversation_json,
    encoded_schema,
    run_chat_build,
)
from .config import SftConfig
from .conversation import EMPTY_CONTENT, Conversation
from .encode import ConversationEncoder, EncodeError
from .readers import read_conversations
from .templates import TEMPLATES

__all__ = ["ChatTokenizer", "EmptySftBuild", "SftKind", "SftResult", "run_sft_build"]

LOSS_MASK = {"loss_mask": "int8"}
SftResult = ChatResult


class EmptySftBuild(EmptyChatBuild):
    """No sample survived: publishing would hand training an empty dataset."""


def run_sft_build(
    config: SftConfig, base: Path, out_root: Path, progress: Progress | None = None, **options
) -> ChatResult:
    """`run_chat_build` of an SFT config (options: allow_empty, workers)."""
    return run_chat_build(SftKind(config, base), base, out_root, progress, **options)


class SftKind(ChatKind):
    """Conversations in; samples (tokens + loss mask) packed into blocks out."""

    format = SFT_BLOCKS
    reader = staticmethod(read_conversations)
    noun = "sample"
    empty_error = EmptySftBuild
    encoded_schema = encoded_schema(
        ("tokens", pa.list_(pa.int32())), ("loss_mask", pa.list_(pa.int8()))
    )
    config: SftConfig

    def read(self, source, path: Path, display: str):
        if source.kind == "squad":
            return squad_conversations(
                path, source=source.name, display=display, articles=source.articles
            )
        return super().read(source, path, display)

    def index_path(self) -> Path:
        index = Path(self.config.retrieval.index)
        return index if index.is_absolute() else self.base / index

    def extra_inputs(self) -> list[dict[str, Any]]:
        if self.config.retrieval is None:
            return []
        from tinylm_shards import ShardError
        from tinylm_shards.retrieval import load_index_manifest

        try:
            manifest = load_index_manifest(self.index_path())
        except ShardError as exc:  # before any work: the index is part of the config
            raise ConfigError(f"retrieval.index: {exc}") from None
        return [
            {"source": RETRIEVAL, "file": self.config.retrieval.index, "content": manifest.version}
        ]

    def hold_out_key(self, record: Conversation) -> str:
        return record.group or record.id

    def prepare(self, record: Conversation, cleaner: Cleaner, source):
        cleaned, changes = _clean(record, cleaner, source.system_prompt)
        if cleaned is None:
            return None, changes, ("clean", EMPTY_CONTENT, "a turn is empty after cleaning")
        return cleaned, changes, None

    def dedup_text(self, record: Conversation) -> str:
        return _dedup_text(record)

    def to_json(self, record: Conversation) -> str:
        return json.dumps(conversation_json(record), ensure_ascii=False)

    def from_json(self, text: str) -> Conversation:
        return conversation_from_json(json.loads(text))

    def encoder(self, tokenizer: ChatTokenizer):
        config = self.config
        encoder = ConversationEncoder(
            tokenizer.backend,
            TEMPLATES[config.template],
            eos_token=tokenizer.eos_token,
            max_length=config.max_length,
            truncation=config.truncation,
        )

        attacher = None
        if config.retrieval is not None:
            from tinylm_shards.retrieval import RetrievalIndex

            index = RetrievalIndex.open(self.index_path())
            attacher = RaftAttacher(config.retrieval, index, config.seed)
            cleaners = {s.name: Cleaner(s.clean) for s in config.sources}

        def encode(conversation: Conversation, validation: bool, counts: Counter) -> dict:
            if not validation and config.augment.enabled:
                conversation = _augment(conversation, config, counts)
            if attacher is None:
                encoded = encoder.encode(conversation)
            else:
                cleaner = cleaners[conversation.source]
                attached = attacher.attach(
                    conversation, encoder.encode, lambda t: cleaner(t)[0].strip(), counts
                )
                if attached is None:
                    raise EncodeError(ANSWER_DOES_NOT_FIT, "question and answer alone do not fit")
                conversation, encoded = attached
            split = SPLITS[validation]
            counts["kept"] += 1
            counts[f"{split}_samples"] += 1
            counts[f"{split}_tokens"] += len(encoded.tokens)
            counts[f"{split}_trainable_tokens"] += int(encoded.loss_mask.sum())
            counts["truncated_samples"] += bool(encoded.dropped_turns or encoded.cut_answer)
            counts["dropped_turns"] += encoded.dropped_turns
            counts["cut_answers"] += encoded.cut_answer
            counts["turns"] += encoded.turns
            return {
                "id": conversation.id,
                "validation": validation,
                "tokens": encoded.tokens,
                "loss_mask": encoded.loss_mask,
            }

        return encode

    def encoded_table(self, rows: list[dict]) -> pa.Table:
        return pa.Table.from_pydict(
            {
                "id": pa.array([r["id"] for r in rows], pa.string()),
                "validation": pa.array([r["validation"] for r in rows], pa.bool_()),
                "tokens": list_array([r["tokens"] for r in rows], pa.int32()),
                "loss_mask": list_array([r["loss_mask"] for r in rows], pa.int8()),
            },
            schema=self.encoded_schema,
        )

    def sink(self, staging: Path, split: str, tokenizer: ChatTokenizer) -> _BlockSink:
        config = self.config
        packer = make_packer(
            config.pack_mode,
            config.max_length,
            tokenizer.info.pad_id,
            window_docs=config.bestfit_window,
            token_columns=LOSS_MASK,
        )
        writer = ShardWriter(
            staging / ("shards" if split == "train" else split),
            rows_per_shard=config.rows_per_shard,
            root=staging,
            token_columns={"loss_mask": pa.int8()},
        )
        return _BlockSink(packer, writer)

    def stats(self, stats: dict[str, SourceStats], sinks: dict[str, _BlockSink]) -> dict[str, Any]:
        sources = {}
        totals: Counter = Counter()
        for name, s in stats.items():
            c = s.counts
            accounting = s.accounting(name, "sample")
            totals.update(accounting)
            candidates = c["augment_candidate_turns"]
            sources[name] = {
                "accounting": accounting,
                "removed": {stage: dict(sorted(r.items())) for stage, r in s.removed.items()},
                "samples": {split: c[f"{split}_samples"] for split in SPLITS},
                "tokens": {split: c[f"{split}_tokens"] for split in SPLITS},
                "trainable_tokens": {split: c[f"{split}_trainable_tokens"] for split in SPLITS},
                "turns": c["turns"],
                "truncated_samples": c["truncated_samples"],
                "dropped_turns": c["dropped_turns"],
                "cut_answers": c["cut_answers"],
                "clean_changes": s.clean_changes(),
                "augmentation": {
                    "turns": candidates,
                    "augmented": c["augmented_turns"],
                    "rate": round(c["augmented_turns"] / candidates, 6) if candidates else 0.0,
                    "deleted_chars": c["augment_deleted_chars"],
                    "repeated_chars": c["augment_repeated_chars"],
                },
            }
        return {
            "sources": sources,
            "total": {k: totals[k] for k in ("in", "kept", "rejected", "duplicates")},
            "trainable_tokens": {
                split: sum(s["trainable_tokens"][split] for s in sources.values())
                for split in SPLITS
            },
            "packing": {split: sinks[split].packer.stats.as_dict() for split in SPLITS},
        } | (
            {RETRIEVAL: retrieval_stats((s.counts for s in stats.values()), self.config.retrieval)}
            if self.config.retrieval is not None
            else {}
        )

    def manifest_fields(self, stats_data, sinks, tokenizer: ChatTokenizer) -> dict[str, Any]:
        config, template = self.config, TEMPLATES[self.config.template]
        pack = stats_data["packing"]
        return {
            "pack_mode": config.pack_mode,
            "num_blocks": pack["train"]["blocks"],
            "tokens": {k: v for k, v in pack["train"].items() if k != "blocks"},
            "sft": {
                "template": template.name,
                "max_length": config.max_length,
                "pack_mode": config.pack_mode,
                "stop_tokens": template.stop_tokens(tokenizer.eos_token),
                "stop_strings": list(template.stop_strings),
                "trainable_tokens": stats_data["trainable_tokens"],
                "samples": {s: pack[s]["documents"] for s in SPLITS},
                "truncation": config.truncation,
                "added_special_tokens": tokenizer.added,
                "chat_template": tokenizer.chat_template,
            },
            "counts": {name: s["accounting"] for name, s in stats_data["sources"].items()},
            "shards": sinks["train"].shards,
            "splits": {
                "validation": {
                    "shards": sinks["validation"].shards,
                    "num_blocks": pack["validation"]["blocks"],
                    "documents": pack["validation"]["documents"],
                    "tokens": {k: v for k, v in pack["validation"].items() if k != "blocks"},
                }
            },
        }


class _BlockSink:
    """Encoded samples -> the packer -> shard files."""

    def __init__(self, packer, writer: ShardWriter) -> None:
        self.packer, self.writer = packer, writer
        self.shards: list[dict] = []

    def add(self, batch: pa.RecordBatch) -> list[int]:
        ids = batch.column("id").to_pylist()
        (offsets, tokens), (_, masks) = (
            list_parts(batch.column(c)) for c in ("tokens", "loss_mask")
        )
        for k, sample_id in enumerate(ids):
            a, b = offsets[k], offsets[k + 1]
            for block in self.packer.add(sample_id, tokens[a:b], {"loss_mask": masks[a:b]}):
                self.writer.add(block)
        return np.diff(offsets).tolist()

    def close(self) -> None:
        for block in self.packer.finish():
            self.writer.add(block)
        self.shards = self.writer.close()


def _clean(
    conversation: Conversation, cleaner: Cleaner, default_system: str | None
) -> tuple[Conversation | None, Counter]:
    """Every text through the source's cleaning rules; None when one is left empty."""
    changes: Counter = Counter()

    def one(text: str) -> str:
        cleaned, changed = cleaner(text)
        changes.update(changed)
        return cleaned.strip()

    system = conversation.system if conversation.system is not None else default_system
    system = one(system) if system is not None else None
    turns = [(one(u), one(a)) for u, a in conversation.turns]
    if system == "" or any(not u or not a for u, a in turns):
        return None, changes
    return dataclasses.replace(conversation, system=system, turns=turns), changes


def _dedup_text(conversation: Conversation) -> str:
    parts = [conversation.system or ""] + [text for turn in conversation.turns for text in turn]
    return "\n\x00\n".join(parts)


def _augment(conversation: Conversation, config: SftConfig, counts: Counter) -> Conversation:
    a = config.augment
    turns = []
    for k, (user, assistant) in enumerate(conversation.turns):
        user, result = augment_instruction(
            user,
            sample_id=conversation.id,
            turn=k,
            seed=config.seed,
            instruction_rate=a.instruction_rate,
            char_rate=a.char_rate,
        )
        counts["augmented_turns"] += result.augmented
        counts["augment_deleted_chars"] += result.deleted
        counts["augment_repeated_chars"] += result.repeated
        counts["augment_candidate_turns"] += 1
        turns.append((user, assistant))
    return dataclasses.replace(conversation, turns=turns)
