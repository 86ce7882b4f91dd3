"""SFT datasets and start models for the tinylm-train SFT tests, written through tinylm-shards.

A sample is (ids, loss_mask): prompt tokens (mask 0, the first always 0), then the answer and
its end-of-turn id (mask 1). Samples are packed first-fit, never split across blocks
(`pack=False`: one sample per row, padded), as the SFT contract says.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa

from tinylm_shards import SFT_BLOCKS, Block, ShardWriter, write_manifest
from tinylm_shards.testing import EOS_ID, write_wordlevel_tokenizer

Sample = tuple[np.ndarray, np.ndarray]
CHAT_TEMPLATE = (
    "{% for m in messages %}{{ m['content'] }}{% if m['role'] == 'assistant' %} <eos>"
    "{% endif %} {% endfor %}"
)


def random_samples(
    rng: np.random.Generator, count: int, *, vocab_size: int = 100, max_len: int = 30
) -> list[Sample]:
    samples = []
    for _ in range(count):
        prompt = int(rng.integers(1, max_len // 2))
        answer = int(rng.integers(1, max_len // 2))
        ids = np.concatenate([rng.integers(1, vocab_size, prompt + answer), [EOS_ID]])
        mask = np.concatenate([np.zeros(prompt), np.ones(answer + 1)])
        samples.append((ids.astype(np.int32), mask.astype(np.int8)))
    return samples


def learnable_samples(rng: np.random.Generator, count: int) -> list[Sample]:
    """Prompts of tokens 1-49, answers of tokens 50-99 (a held-out loss that can fall)."""
    samples = []
    for _ in range(count):
        prompt = rng.integers(1, 50, int(rng.integers(2, 12)))
        answer = rng.integers(50, 100, int(rng.integers(2, 12)))
        ids = np.concatenate([prompt, answer, [EOS_ID]]).astype(np.int32)
        mask = np.concatenate([np.zeros(len(prompt)), np.ones(len(answer) + 1)]).astype(np.int8)
        samples.append((ids, mask))
    return samples


def pack_samples(samples: Sequence[Sample], block_size: int, *, pack: bool = True) -> list[Block]:
    """First-fit packing (each sample whole), or one sample per row."""
    rows: list[list[int]] = []
    for k, (ids, _) in enumerate(samples):
        if len(ids) > block_size:
            raise ValueError(f"sample {k} is longer than the block")
        used = [sum(len(samples[j][0]) for j in row) for row in rows]
        fit = next((r for r, n in enumerate(used) if pack and n + len(ids) <= block_size), None)
        if fit is None:
            rows.append([k])
        else:
            rows[fit].append(k)
    blocks = []
    for row in rows:
        ids = np.concatenate([samples[k][0] for k in row])
        mask = np.concatenate([samples[k][1] for k in row])
        pad = block_size - len(ids)
        blocks.append(
            Block(
                input_ids=np.concatenate([ids, np.full(pad, EOS_ID)]).astype(np.int32),
                doc_offsets=np.cumsum([0, *(len(samples[k][0]) for k in row)]).astype(np.int32),
                doc_ids=tuple(f"s{k}" for k in row),
                token_columns={"loss_mask": np.concatenate([mask, np.zeros(pad)]).astype(np.int8)},
            )
        )
    return blocks


def _write_blocks(directory: Path, root: Path, blocks: list[Block]) -> list[dict]:
    writer = ShardWriter(
        directory, rows_per_shard=16, root=root, token_columns={"loss_mask": pa.int8()}
    )
    for block in blocks:
        writer.add(block)
    return writer.close()


def write_sft_dataset(
    out: Path,
    samples: Sequence[Sample],
    *,
    block_size: int = 64,
    pack: bool = True,
    validation: Sequence[Sample] | None = None,
    vocab_size: int = 100,
    chat_template: str | None = CHAT_TEMPLATE,
    stop_tokens: Sequence[str] = ("<eos>",),
    version: str = "v-sft0123456789ab",
) -> Path:
    """OUT/sft/<version>/ with manifest (format tinylm-sft-blocks, an `sft` object), shards,
    an optional validation split and the word-level tokenizer with `chat_template`."""
    root = out / "sft" / version
    blocks = pack_samples(samples, block_size, pack=pack)
    shards = _write_blocks(root / "shards", root, blocks)
    splits = {}
    if validation is not None:
        held_out = pack_samples(validation, block_size, pack=pack)
        splits["validation"] = {
            "shards": _write_blocks(root / "validation", root, held_out),
            "num_blocks": len(held_out),
        }
    tokenizer = write_wordlevel_tokenizer(root / "tokenizer", vocab_size)
    if chat_template is not None:
        config_path = tokenizer / "tokenizer_config.json"
        config = json.loads(config_path.read_text())
        config["chat_template"] = chat_template
        config_path.write_text(json.dumps(config, indent=2))
    fields = {
        "name": "sft",
        "version": version,
        "tokenizer": {"vocab_size": vocab_size, "eos_id": EOS_ID, "pad_id": EOS_ID},
        "block_size": block_size,
        "sft": {
            "template": "tinylm",
            "max_length": block_size,
            "pack_mode": "bestfit" if pack else "none",
            "stop_tokens": list(stop_tokens),
            "stop_strings": ["\nHuman:"],
            "trainable_tokens": {"train": int(sum(m.sum() for _, m in samples))},
        },
        "shards": shards,
        **({"splits": splits} if splits else {}),
    }
    write_manifest(root, fields, format=SFT_BLOCKS)
    (out / "sft" / "LATEST").write_text(version + "\n")
    return root


def write_start_model(directory: Path, *, vocab_size: int = 100, seed: int = 0) -> Path:
    """A debug-shape Qwen2 model directory with the word-level tokenizer (an `init_from`)."""
    import torch
    from transformers import Qwen2ForCausalLM

    from tinylm_train.models.qwen2 import build_config

    torch.manual_seed(seed)
    config = build_config("debug", tokenizer_vocab_size=vocab_size, eos_id=EOS_ID, pad_id=EOS_ID)
    Qwen2ForCausalLM(config).save_pretrained(directory)
    write_wordlevel_tokenizer(directory, vocab_size)
    return directory
