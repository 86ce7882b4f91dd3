"""An SFT build: read -> clean -> exact dedup -> hold out -> augment -> encode -> pack -> publish.

Output: OUT/<name>/<version>/ in the `tinylm-sft-blocks` format (docs/shard-format.md), appearing
in one rename when complete; OUT/<name>/LATEST names it. The version is derived from the inputs'
contents, the resolved config, the tokenizer (with any tokens the template adds) and the code,
so rebuilding unchanged inputs is a no-op, and a killed build rerun starts over and ends with the
same bytes (the build is one ordered pass: deterministic). Memory holds the conversations of the
build and their token ids.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import shutil
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from time import perf_counter
from typing import Any

import numpy as np
import pyarrow as pa

from tinylm_shards import SFT_BLOCKS, ShardWriter, write_manifest

from .. import __version__
from ..assembly import _RejectSink
from ..atomic import remove_temporaries, write_json, write_text
from ..clean import Cleaner
from ..document import Rejection
from ..fingerprint import code_fingerprint, file_fingerprint, version_id
from ..mixture import validation_coin
from ..pack import make_packer
from ..progress import Progress
from ..rag.raft import ANSWER_DOES_NOT_FIT, RaftAttacher, squad_conversations
from ..readers import expand_paths
from ..textnorm import dedup_key
from ..tokenizer import LoadedTokenizer
from .augment import augment_instruction
from .config import SftConfig
from .conversation import EMPTY_CONTENT, Conversation
from .encode import ConversationEncoder, EncodeError
from .readers import read_conversations
from .templates import TEMPLATES, Template

logger = logging.getLogger(__name__)

LOSS_MASK = {"loss_mask": "int8"}
SPLITS = ("train", "validation")
ACCOUNTING = ("in", "kept", "rejected", "duplicates")
LENGTH_BINS = np.array([0, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, 1 << 30])


class EmptySftBuild(RuntimeError):
    """No sample survived: publishing would hand training an empty dataset."""


@dataclass
class SftResult:
    out_dir: Path
    manifest: dict[str, Any]
    stats: dict[str, Any]
    reused: bool = False


@dataclass
class _SourceStats:
    counts: Counter = field(default_factory=Counter)
    removed: dict[str, Counter] = field(default_factory=dict)  # stage -> reason -> n
    lengths: list[int] = field(default_factory=list)

    def remove(self, rejection: Rejection) -> None:
        self.removed.setdefault(rejection.stage, Counter())[rejection.reason] += 1


@dataclass
class _Kept:
    conversation: Conversation
    source_index: int
    validation: bool = False


class ChatTokenizer:
    """The build's tokenizer with the template's special tokens added where missing."""

    def __init__(self, spec: str, base: Path, template: Template) -> None:
        from tokenizers import AddedToken

        self.loaded = LoadedTokenizer(spec, base)
        self.backend = self.loaded.backend
        self.template = template
        self.eos_token = self.backend.id_to_token(self.loaded.info.eos_id)
        self.added = [t for t in template.special_tokens if self.backend.token_to_id(t) is None]
        if self.added:
            self.backend.add_special_tokens(
                [AddedToken(t, special=True, normalized=False) for t in self.added]
            )
        self.sha256 = (
            hashlib.sha256(self.backend.to_str().encode()).hexdigest()
            if self.added
            else self.loaded.info.sha256
        )
        self.info = dataclasses.replace(
            self.loaded.info,
            sha256=self.sha256,
            vocab_size=self.backend.get_vocab_size(with_added_tokens=True),
        )

    @property
    def chat_template(self) -> str:
        return self.template.jinja(self.eos_token)

    def save(self, directory: Path) -> None:
        """The tokenizer files with the Jinja chat template (and added tokens) in its config."""
        self.loaded.save(directory)
        for stale in directory.glob("*.jinja"):  # a copied template would override ours
            stale.unlink()
        config_path = directory / "tokenizer_config.json"
        config = json.loads(config_path.read_text("utf-8"))
        config["chat_template"] = self.chat_template
        if self.added:
            (directory / "tokenizer.json").write_text(self.backend.to_str(), "utf-8")
            decoder = config.setdefault("added_tokens_decoder", {})
            for token in self.added:
                decoder[str(self.backend.token_to_id(token))] = {
                    "content": token,
                    "lstrip": False,
                    "normalized": False,
                    "rstrip": False,
                    "single_word": False,
                    "special": True,
                }
        config_path.write_text(
            json.dumps(config, indent=2, sort_keys=True, ensure_ascii=False) + "\n", "utf-8"
        )


def run_sft_build(
    config: SftConfig,
    base: Path,
    out_root: Path,
    progress: Progress | None = None,
    *,
    allow_empty: bool = False,
) -> SftResult:
    progress = progress or Progress()
    seconds: Counter = Counter()
    started = perf_counter()
    progress.stage("load tokenizer, hash inputs", None)
    template = TEMPLATES[config.template]
    tokenizer = ChatTokenizer(config.tokenizer, base, template)
    files, config_data, code, version = hash_inputs(config, base, tokenizer.sha256)
    out_dir, staging, built = prepare_output(out_root / config.name, version)
    if built is not None:
        return SftResult(out_dir, *built, reused=True)
    seconds["hash"] += perf_counter() - started

    stats = {s.name: _SourceStats() for s in config.sources}
    rejects = _RejectSink(staging / "rejects")

    def reject(rejection: Rejection) -> None:
        stats[rejection.source].remove(rejection)
        rejects.add(rejection)

    # Read, clean, dedup: one ordered pass over the files.
    t0 = perf_counter()
    progress.stage("read, clean, dedup", sum(f[4] for f in files) or None)
    cleaners = [Cleaner(s.clean) for s in config.sources]
    seen: dict[bytes, str] = {}
    kept: list[_Kept] = []
    gold: dict = {}  # squad sources: sample id -> gold context and answers (rag.raft)
    for index, path, display, _, size in files:
        source = config.sources[index]
        for item in (
            squad_conversations(
                path, source=source.name, display=display, articles=source.articles, table=gold
            )
            if source.kind == "squad"
            else read_conversations(
                source.kind, path, source=source.name, display_path=display, fields=source.fields
            )
        ):
            stats[source.name].counts["in"] += 1
            if isinstance(item, Rejection):
                reject(item)
                continue
            cleaned, changes = _clean(item, cleaners[index], source.system_prompt)
            stats[source.name].counts.update({f"clean_{k}": v for k, v in changes.items()})
            if cleaned is None:
                reject(
                    Rejection(
                        source.name,
                        "clean",
                        EMPTY_CONTENT,
                        "a turn is empty after cleaning",
                        item.id,
                        item.file,
                        item.line,
                    )
                )
                continue
            if config.dedup:
                key = dedup_key(_dedup_text(cleaned))
                first = seen.setdefault(key, cleaned.id)
                if first != cleaned.id:
                    reject(
                        Rejection(
                            source.name,
                            "exact_dedup",
                            "duplicate",
                            f"same as {first}",
                            cleaned.id,
                            cleaned.file,
                            cleaned.line,
                        )
                    )
                    continue
            kept.append(_Kept(cleaned, index))
        progress.advance(size)
    seconds["read_clean_dedup"] += perf_counter() - t0

    _hold_out(config, kept)

    # Augment (training samples only), encode, pack.
    t0 = perf_counter()
    progress.stage("augment, tokenize, pack", len(kept) or None)
    encoder = ConversationEncoder(
        tokenizer.backend,
        template,
        eos_token=tokenizer.eos_token,
        max_length=config.max_length,
        truncation=config.truncation,
    )
    pad_id = tokenizer.info.pad_id
    packers = {
        s: make_packer(
            config.pack_mode,
            config.max_length,
            pad_id,
            window_docs=config.bestfit_window,
            token_columns=LOSS_MASK,
        )
        for s in SPLITS
    }
    writers = {
        s: ShardWriter(
            staging / ("shards" if s == "train" else s),
            rows_per_shard=config.rows_per_shard,
            root=staging,
            token_columns={"loss_mask": pa.int8()},
        )
        for s in SPLITS
    }
    trainable = Counter()
    attacher = None
    if config.retrieval is not None:
        from tinylm_shards.retrieval import RetrievalIndex

        index_path = Path(config.retrieval.index)
        index = RetrievalIndex.open(index_path if index_path.is_absolute() else base / index_path)
        attacher = RaftAttacher(config.retrieval, index, config.seed, gold)
    for item in kept:
        conversation, source = item.conversation, config.sources[item.source_index]
        counts = stats[source.name].counts
        split = "validation" if item.validation else "train"
        if not item.validation and config.augment.enabled:
            conversation = _augment(conversation, config, counts)
        try:
            if attacher is None:
                encoded = encoder.encode(conversation)
            else:
                cleaner = cleaners[item.source_index]
                attached = attacher.attach(
                    conversation, encoder.encode, lambda t, c=cleaner: c(t)[0].strip()
                )
                if attached is None:
                    raise EncodeError(ANSWER_DOES_NOT_FIT, "question and answer alone do not fit")
                conversation, encoded = attached
        except EncodeError as exc:
            reject(
                Rejection(
                    source.name,
                    "tokenize",
                    exc.reason,
                    exc.detail,
                    conversation.id,
                    conversation.file,
                    conversation.line,
                )
            )
            progress.advance(1)
            continue
        counts["kept"] += 1
        counts[f"{split}_samples"] += 1
        counts[f"{split}_tokens"] += len(encoded.tokens)
        counts[f"{split}_trainable_tokens"] += int(encoded.loss_mask.sum())
        counts["truncated_samples"] += bool(encoded.dropped_turns or encoded.cut_answer)
        counts["dropped_turns"] += encoded.dropped_turns
        counts["cut_answers"] += encoded.cut_answer
        counts["turns"] += encoded.turns
        stats[source.name].lengths.append(len(encoded.tokens))
        trainable[split] += int(encoded.loss_mask.sum())
        for block in packers[split].add(
            conversation.id, encoded.tokens, {"loss_mask": encoded.loss_mask}
        ):
            writers[split].add(block)
        progress.advance(1)
    for split in SPLITS:
        for block in packers[split].finish():
            writers[split].add(block)
    shards = {s: writers[s].close() for s in SPLITS}
    seconds["augment_tokenize_pack"] += perf_counter() - t0

    progress.stage("write manifest", None)
    reject_files = rejects.close()
    pack_stats = {s: packers[s].stats.as_dict() for s in SPLITS}
    stats_data = _stats(config, stats, pack_stats, trainable, seconds)
    if attacher is not None:
        stats_data["retrieval"] = attacher.stats()
    if stats_data["total"]["kept"] == 0 and not allow_empty:
        shutil.rmtree(staging, ignore_errors=True)
        raise EmptySftBuild(
            f"nothing to build: all {stats_data['total']['in']:,} input records were removed "
            f"({stats_data['total']['rejected']:,} rejected, {stats_data['total']['duplicates']:,} duplicates; see the rejects)"
        )
    tokenizer.save(staging / "tokenizer")
    write_json(staging / "stats.json", stats_data)
    try:
        from .plots import plot_sft

        plot_sft(
            stats_data, {n: s.lengths for n, s in stats.items()}, LENGTH_BINS, staging / "plots"
        )
    except Exception as exc:  # a plot must never cost the user the build
        logger.warning("could not draw plots: %s", exc)
    fields = {
        "name": config.name,
        "version": version,
        "created_by": {"package": "tinylm-data", "version": __version__, "code": code},
        "tokenizer": tokenizer.info.as_dict(),
        "block_size": config.max_length,
        "pack_mode": config.pack_mode,
        "num_blocks": pack_stats["train"]["blocks"],
        "tokens": {k: v for k, v in pack_stats["train"].items() if k != "blocks"},
        "sft": {
            "template": template.name,
            "max_length": config.max_length,
            "pack_mode": config.pack_mode,
            "stop_tokens": template.stop_tokens(tokenizer.eos_token),
            "stop_strings": list(template.stop_strings),
            "trainable_tokens": {s: trainable[s] for s in SPLITS},
            "samples": {s: pack_stats[s]["documents"] for s in SPLITS},
            "truncation": config.truncation,
            "added_special_tokens": tokenizer.added,
            "chat_template": tokenizer.chat_template,
        },
        "counts": {name: s["accounting"] for name, s in stats_data["sources"].items()},
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
                "num_blocks": pack_stats["validation"]["blocks"],
                "documents": pack_stats["validation"]["documents"],
                "tokens": {k: v for k, v in pack_stats["validation"].items() if k != "blocks"},
            }
        },
    }
    manifest = publish(staging, out_dir, fields, SFT_BLOCKS)
    return SftResult(out_dir, manifest, stats_data)


def hash_inputs(config, base: Path, tokenizer_sha256: str):
    """(files, resolved config, code fingerprint, version id) of a chat-data build: `files` is
    (source index, path, display path, content fingerprint, bytes) per input file."""
    code = code_fingerprint()
    files = []
    for index, source in enumerate(config.sources):
        for path in expand_paths(source.paths, base):
            try:
                display = path.resolve().relative_to(base.resolve()).as_posix()
            except ValueError:
                display = path.name
            files.append((index, path, display, file_fingerprint(path), path.stat().st_size))
    config_data = config.model_dump(mode="json")
    version = version_id(
        inputs=[
            {"source": config.sources[i].name, "file": d, "content": f} for i, _, d, f, _ in files
        ],
        config=config_data,
        code_version=code,
        tokenizer_sha256=tokenizer_sha256,
    )
    return files, config_data, code, version


def prepare_output(dataset_dir: Path, version: str):
    """(out_dir, staging, None), the staging directory made empty; or (out_dir, None,
    (manifest, stats)) when this version is already built (a no-op rebuild)."""
    out_dir = dataset_dir / version
    if (out_dir / "manifest.json").is_file():
        logger.info("%s is already built; nothing to do", out_dir)
        write_text(dataset_dir / "LATEST", version + "\n")
        built = tuple(
            json.loads((out_dir / f).read_text("utf-8")) for f in ("manifest.json", "stats.json")
        )
        return out_dir, None, built
    staging = dataset_dir / f".staging-{version}"
    shutil.rmtree(staging, ignore_errors=True)
    remove_temporaries(dataset_dir)
    staging.mkdir(parents=True)
    return out_dir, staging, None


def publish(staging: Path, out_dir: Path, fields: dict[str, Any], shard_format) -> dict[str, Any]:
    """The manifest written last, then the staging directory renamed into place and LATEST set."""
    manifest = write_manifest(staging, fields, format=shard_format).raw
    if out_dir.exists():  # a directory left without a manifest: not a finished build
        shutil.rmtree(out_dir)
    os.replace(staging, out_dir)
    write_text(out_dir.parent / "LATEST", out_dir.name + "\n")
    return manifest


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


def _hold_out(config: SftConfig, kept: list[_Kept]) -> None:
    """Per source: the samples whose seeded coin is below the share, at most `heldout_max`
    (the lowest coins)."""
    for index, source in enumerate(config.sources):
        if source.heldout_share <= 0 or source.heldout_max == 0:
            continue
        coins = [
            (validation_coin(k.conversation.group or k.conversation.id, config.seed), n)
            for n, k in enumerate(kept)
            if k.source_index == index
        ]
        chosen = sorted(c for c in coins if c[0] < source.heldout_share)[: source.heldout_max]
        for _, n in chosen:
            kept[n].validation = True


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


def _stats(
    config: SftConfig,
    stats: dict[str, _SourceStats],
    pack_stats: dict,
    trainable: Counter,
    seconds: Counter,
) -> dict[str, Any]:
    sources = {}
    totals: Counter = Counter()
    for name, s in stats.items():
        c = s.counts
        removed = {stage: dict(sorted(r.items())) for stage, r in s.removed.items()}
        duplicates = sum(s.removed.get("exact_dedup", Counter()).values())
        rejected = sum(sum(r.values()) for stage, r in s.removed.items() if stage != "exact_dedup")
        accounting = {
            "in": c["in"],
            "kept": c["kept"],
            "rejected": rejected,
            "duplicates": duplicates,
        }
        if accounting["in"] != accounting["kept"] + rejected + duplicates:
            raise RuntimeError(f"sample accounting does not close for source {name}: {accounting}")
        totals.update(accounting)
        candidates = c["augment_candidate_turns"]
        sources[name] = {
            "accounting": accounting,
            "removed": removed,
            "samples": {split: c[f"{split}_samples"] for split in SPLITS},
            "tokens": {split: c[f"{split}_tokens"] for split in SPLITS},
            "trainable_tokens": {split: c[f"{split}_trainable_tokens"] for split in SPLITS},
            "turns": c["turns"],
            "truncated_samples": c["truncated_samples"],
            "dropped_turns": c["dropped_turns"],
            "cut_answers": c["cut_answers"],
            "clean_changes": {
                k.removeprefix("clean_"): v for k, v in sorted(c.items()) if k.startswith("clean_")
            },
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
        "total": {k: totals[k] for k in ACCOUNTING},
        "trainable_tokens": {s: trainable[s] for s in SPLITS},
        "packing": pack_stats,
        # the only part that differs between two runs of one build
        "seconds": {k: round(v, 3) for k, v in seconds.items()},
    }
