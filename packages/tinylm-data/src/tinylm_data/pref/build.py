"""A preference build: read -> clean -> pair checks -> exact dedup -> hold out -> encode ->
truncate -> write `tinylm-preference-pairs` shards.

The SFT builder's parts do the work (readers' rejects, cleaning, the chat template's turn-by-turn
tokenization, held-out split, version id, staging and publishing, plots); this module only
adds what a pair needs. The prompt is everything up to where the last answer starts (its template
scaffolding included); each answer is the last assistant piece the template trains on (its
terminator included), so the label mask of `prompt + answer` is 0 on the prompt, 1 on the answer.

Too long for `max_length` (prompt + the longer answer): the oldest whole exchanges of the prompt
go first (the system prompt stays), then `tinylm_shards.truncate_pair` cuts the prompt's oldest
tokens and, last, the answers' ends. Both are counted.
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from time import perf_counter
from typing import Any

import numpy as np

from tinylm_shards import PREFERENCE_PAIRS, PairWriter, PreferencePair, truncate_pair

from .. import __version__
from ..assembly import _RejectSink
from ..atomic import write_json
from ..clean import Cleaner
from ..document import Rejection
from ..progress import Progress
from ..sft.build import (
    LENGTH_BINS,
    SPLITS,
    ChatTokenizer,
    EmptySftBuild,
    _dedup_text,
    _hold_out,
    _Kept,
    _SourceStats,
    hash_inputs,
    prepare_output,
    publish,
)
from ..sft.build import _clean as _clean_conversation
from ..sft.conversation import EMPTY_CONTENT
from ..sft.encode import ConversationEncoder, EncodeError
from ..sft.templates import TEMPLATES
from ..textnorm import dedup_key
from .config import PrefConfig
from .readers import EMPTY_ANSWER, PROMPT_TOO_LONG, SAME_ANSWERS, PrefRecord, read_pairs

logger = logging.getLogger(__name__)

ACCOUNTING = ("in", "kept", "rejected", "duplicates")
TRUNCATION_COUNTS = (
    "prompt_truncated_pairs",
    "prompt_truncated_tokens",
    "answer_truncated_pairs",
    "answer_truncated_tokens",
)


class EmptyPrefBuild(EmptySftBuild):
    """No pair survived: publishing would hand training an empty dataset."""


@dataclass
class PrefResult:
    out_dir: Path
    manifest: dict[str, Any]
    stats: dict[str, Any]
    reused: bool = False


@dataclass
class _KeptPair(_Kept):
    rejected: str = ""


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
    config: PrefConfig,
    base: Path,
    out_root: Path,
    progress: Progress | None = None,
    *,
    allow_empty: bool = False,
) -> PrefResult:
    progress = progress or Progress()
    seconds: Counter = Counter()
    started = perf_counter()
    progress.stage("load tokenizer, hash inputs", None)
    template = TEMPLATES[config.template]
    tokenizer = ChatTokenizer(config.tokenizer, base, template)
    files, config_data, code, version = hash_inputs(config, base, tokenizer.sha256)
    out_dir, staging, built = prepare_output(out_root / config.name, version)
    if built is not None:
        return PrefResult(out_dir, *built, reused=True)
    seconds["hash"] += perf_counter() - started

    stats = {s.name: _SourceStats() for s in config.sources}
    rejects = _RejectSink(staging / "rejects")

    def reject(source: str, stage: str, reason: str, detail: str, record: PrefRecord) -> None:
        c = record.conversation
        rejection = Rejection(source, stage, reason, detail, c.id, c.file, c.line)
        stats[source].remove(rejection)
        rejects.add(rejection)

    t0 = perf_counter()
    progress.stage("read, clean, dedup", sum(f[4] for f in files) or None)
    cleaners = [Cleaner(s.clean) for s in config.sources]
    seen: dict[bytes, str] = {}
    kept: list[_KeptPair] = []
    for index, path, display, _, size in files:
        source = config.sources[index]
        for item in read_pairs(
            source.kind, path, source=source.name, display_path=display, fields=source.fields
        ):
            stats[source.name].counts["in"] += 1
            if isinstance(item, Rejection):
                stats[source.name].remove(item)
                rejects.add(item)
                continue
            record, changes, empty = _clean(item, cleaners[index], source.system_prompt)
            stats[source.name].counts.update({f"clean_{k}": v for k, v in changes.items()})
            if record is None:
                reject(source.name, "clean", empty, "a text is empty after cleaning", item)
                continue
            if record.chosen == record.rejected:
                reject(source.name, "pair", SAME_ANSWERS, "the two answers are the same", record)
                continue
            if config.dedup:
                key = dedup_key(_dedup_text(record.conversation) + "\n\x00\n" + record.rejected)
                first = seen.setdefault(key, record.id)
                if first != record.id:
                    reject(source.name, "exact_dedup", "duplicate", f"same as {first}", record)
                    continue
            kept.append(_KeptPair(record.conversation, index, rejected=record.rejected))
        progress.advance(size)
    seconds["read_clean_dedup"] += perf_counter() - t0

    _hold_out(config, kept)

    t0 = perf_counter()
    progress.stage("tokenize, truncate, write", len(kept) or None)
    conversation_encoder = ConversationEncoder(
        tokenizer.backend, template, eos_token=tokenizer.eos_token, max_length=1 << 30
    )
    encoder = PairEncoder(
        conversation_encoder,
        max_length=config.max_length,
        max_prompt_length=config.max_prompt_length,
    )
    writers = {
        s: PairWriter(
            staging / ("shards" if s == "train" else s),
            max_length=config.max_length,
            rows_per_shard=config.rows_per_shard,
            root=staging,
        )
        for s in SPLITS
    }
    split_counts = {s: Counter() for s in SPLITS}
    lengths: dict[str, list[int]] = {s.name: [] for s in config.sources}
    for item in kept:
        source = config.sources[item.source_index]
        record = PrefRecord(item.conversation, item.rejected)
        split = "validation" if item.validation else "train"
        try:
            encoded = encoder.encode(record)
        except EncodeError as exc:
            reject(source.name, "tokenize", exc.reason, exc.detail, record)
            progress.advance(1)
            continue
        pair = encoded.pair
        writers[split].add(pair)
        counts = stats[source.name].counts
        counts["kept"] += 1
        counts[f"{split}_pairs"] += 1
        counts["dropped_turns"] += encoded.dropped_turns
        counts[f"{split}_tokens"] += _tokens(pair)
        split_counts[split]["pairs"] += 1
        split_counts[split]["tokens"] += _tokens(pair)
        for target in (counts, split_counts[split]):
            _count_truncation(target, pair)
        lengths[source.name].append(pair.length)
        progress.advance(1)
    shards = {s: writers[s].close() for s in SPLITS}
    seconds["tokenize_truncate_write"] += perf_counter() - t0

    progress.stage("write manifest", None)
    reject_files = rejects.close()
    stats_data = _stats(stats, split_counts, seconds)
    if stats_data["total"]["kept"] == 0 and not allow_empty:
        shutil.rmtree(staging, ignore_errors=True)
        total = stats_data["total"]
        raise EmptyPrefBuild(
            f"nothing to build: all {total['in']:,} input records were removed "
            f"({total['rejected']:,} rejected, {total['duplicates']:,} duplicates; see the rejects)"
        )
    tokenizer.save(staging / "tokenizer")
    write_json(staging / "stats.json", stats_data)
    try:
        from ..sft.plots import plot_sft

        plot_sft(stats_data, lengths, LENGTH_BINS, staging / "plots")
    except Exception as exc:  # a plot must never cost the user the build
        logger.warning("could not draw plots: %s", exc)
    pairs = {s: stats_data["splits"][s]["pairs"] for s in SPLITS}
    fields = {
        "name": config.name,
        "version": version,
        "created_by": {"package": "tinylm-data", "version": __version__, "code": code},
        "tokenizer": tokenizer.info.as_dict(),
        "block_size": config.max_length,
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
        "inputs": [
            {"source": config.sources[i].name, "file": d, "bytes": n, "xxh3_128": f}
            for i, _, d, f, n in files
        ],
        "config": config_data,
        "rejects": [f"rejects/{name}" for name in reject_files],
        "shards": shards["train"],
        "splits": {
            "validation": {
                "shards": shards["validation"],
                "num_blocks": pairs["validation"],
                "counts": _manifest_counts(stats_data["splits"]["validation"]),
            }
        },
    }
    manifest = publish(staging, out_dir, fields, PREFERENCE_PAIRS)
    return PrefResult(out_dir, manifest, stats_data)


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


def _count_truncation(counts: Counter, pair: PreferencePair) -> None:
    counts["prompt_truncated_pairs"] += pair.prompt_truncated > 0
    counts["prompt_truncated_tokens"] += pair.prompt_truncated
    counts["answer_truncated_pairs"] += pair.answer_truncated > 0
    counts["answer_truncated_tokens"] += pair.answer_truncated


def _manifest_counts(split: dict[str, int]) -> dict[str, int]:
    return {"pairs": split["pairs"], **{k: split[k] for k in TRUNCATION_COUNTS}}


def _stats(
    stats: dict[str, _SourceStats], split_counts: dict[str, Counter], seconds: Counter
) -> dict[str, Any]:
    sources = {}
    totals: Counter = Counter()
    for name, s in stats.items():
        c = s.counts
        duplicates = sum(s.removed.get("exact_dedup", Counter()).values())
        rejected = sum(sum(r.values()) for stage, r in s.removed.items() if stage != "exact_dedup")
        accounting = {
            "in": c["in"],
            "kept": c["kept"],
            "rejected": rejected,
            "duplicates": duplicates,
        }
        if accounting["in"] != accounting["kept"] + rejected + duplicates:
            raise RuntimeError(f"pair accounting does not close for source {name}: {accounting}")
        totals.update(accounting)
        sources[name] = {
            "accounting": accounting,
            "removed": {stage: dict(sorted(r.items())) for stage, r in s.removed.items()},
            "pairs": {split: c[f"{split}_pairs"] for split in SPLITS},
            "tokens": {split: c[f"{split}_tokens"] for split in SPLITS},
            "dropped_turns": c["dropped_turns"],
            **{k: c[k] for k in TRUNCATION_COUNTS},
            "clean_changes": {
                k.removeprefix("clean_"): v for k, v in sorted(c.items()) if k.startswith("clean_")
            },
        }
    return {
        "sources": sources,
        "total": {k: totals[k] for k in ACCOUNTING},
        "splits": {
            s: {"pairs": split_counts[s]["pairs"], "tokens": split_counts[s]["tokens"]}
            | {k: split_counts[s][k] for k in TRUNCATION_COUNTS}
            for s in SPLITS
        },
        # the only part that differs between two runs of one build
        "seconds": {k: round(v, 3) for k, v in seconds.items()},
    }
