"""SFT training throughput on CPU: packed rows against one sample per padded row (the reference
project's layout), in effective trainable (assistant) tokens per second. Target: packed >= 2x.

Both variants train the same model (forward, backward, AdamW) through the product path: SFT
blocks collated with their loss mask (`collate_blocks(..., loss_mask=True)`), per-document
attention (`tinylm_varlen`, SDPA per sample off CUDA), the same rows per step. Packed rows hold
samples placed best-fit, never split; padded rows hold one sample each, padded to max_length.
Timings are medians over interleaved rounds (the variants alternate, so a busy machine affects
them alike).

Samples are read from SFT shards when --data is given (`tinylm-data sft build`, either pack
mode); otherwise they are drawn with a fixed seed: lengths log-normal around 180 tokens
(Alpaca-like), the first 40% of each the prompt.

Usage: OMP_NUM_THREADS=1 uv run python tools/bench/bench_sft_train.py [--data OUT/sft-sample]
       [--model cpu-small] [--max-length 1024] [--batch 2] [--rounds 3] [--steps 3]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections import defaultdict

import numpy as np
import torch
from transformers import Qwen2ForCausalLM

from tinylm_shards import SFT_BLOCKS, Block, DatasetReader
from tinylm_train.collate import IGNORE_INDEX, LOSS_MASK, collate_blocks
from tinylm_train.models.qwen2 import build_config
from tinylm_train.models.qwen2.attention import model_inputs, select_attention
from tinylm_train.shards import load_manifest

Sample = tuple[np.ndarray, np.ndarray]


def shard_samples(data: str) -> tuple[list[Sample], int, int]:
    """Every sample (ids, loss mask) of an SFT dataset, its max_length and vocabulary size."""
    manifest = load_manifest(data, formats=(SFT_BLOCKS,))
    reader = DatasetReader(manifest, token_columns=(LOSS_MASK,))
    samples = []
    for block in reader.blocks():
        mask = block.token_columns[LOSS_MASK]
        for start, end in zip(block.doc_offsets[:-1], block.doc_offsets[1:], strict=True):
            samples.append((block.input_ids[start:end], mask[start:end]))
    return samples, manifest.block_size, manifest.vocab_size


def drawn_samples(count: int, max_length: int, vocab: int) -> list[Sample]:
    rng = np.random.default_rng(0)
    samples = []
    for length in np.clip(rng.lognormal(np.log(180), 0.7, count), 8, max_length).astype(int):
        ids = rng.integers(1, vocab, length)
        mask = np.zeros(length, dtype=np.int8)
        mask[int(0.4 * length) :] = 1
        samples.append((ids, mask))
    return samples


def rows(samples: list[Sample], max_length: int, *, pack: bool) -> list[Block]:
    """Best-fit rows (each sample whole), or one sample per row; padding has mask 0."""
    groups: list[list[int]] = []
    room: list[int] = []
    for k, (ids, _) in enumerate(samples):
        fits = [r for r in range(len(groups)) if pack and room[r] >= len(ids)]
        if fits:
            best = min(fits, key=room.__getitem__)
            groups[best].append(k)
            room[best] -= len(ids)
        else:
            groups.append([k])
            room.append(max_length - len(ids))
    blocks = []
    for group in groups:
        ids = np.concatenate([samples[k][0] for k in group])
        mask = np.concatenate([samples[k][1] for k in group])
        pad = max_length - len(ids)
        blocks.append(
            Block(
                input_ids=np.concatenate([ids, np.zeros(pad, dtype=ids.dtype)]),
                doc_offsets=np.cumsum([0, *(len(samples[k][0]) for k in group)]),
                token_columns={LOSS_MASK: np.concatenate([mask, np.zeros(pad, dtype=np.int8)])},
            )
        )
    return blocks


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", help="SFT shard dataset (OUT/<name> or a version directory).")
    parser.add_argument("--model", default="cpu-small")
    parser.add_argument("--max-length", type=int, default=1024, help="Without --data.")
    parser.add_argument("--batch", type=int, default=2, help="Rows per step.")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=3, help="Timed steps per variant per round.")
    args = parser.parse_args()

    if args.data:
        samples, max_length, vocab = shard_samples(args.data)
        source = args.data
    else:
        max_length, vocab = args.max_length, 8000
        samples = drawn_samples(400, max_length, vocab)
        source = "drawn samples"
    lengths = np.array([len(ids) for ids, _ in samples])
    print(
        f"{source}: {len(samples)} samples, length median {np.median(lengths):.0f}, "
        f"mean {lengths.mean():.0f}, max {lengths.max()}; max_length {max_length}; model "
        f"{args.model}, {args.batch} rows per step, {torch.get_num_threads()} thread(s)"
    )
    attention = select_attention("cpu")
    config = build_config(
        args.model, tokenizer_vocab_size=vocab, eos_id=0, pad_id=0, attn_implementation=attention
    )
    torch.manual_seed(0)
    model = Qwen2ForCausalLM(config)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    needed = args.batch * (args.steps * args.rounds + 1)
    variants = {}
    for name, pack in (("packed (best-fit)", True), ("padded, 1 sample/row", False)):
        blocks = rows(samples, max_length, pack=pack)
        if len(blocks) < needed:
            blocks = blocks * -(-needed // len(blocks))
        batches = [
            collate_blocks(blocks[i : i + args.batch], loss_mask=True)
            for i in range(0, needed, args.batch)
        ]
        variants[name] = batches

    def step(batch: dict) -> tuple[float, int]:
        inputs = model_inputs(batch, attention)
        start = time.perf_counter()
        model(**inputs).loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        trained = int((batch["labels"][:, 1:] != IGNORE_INDEX).sum())
        return time.perf_counter() - start, trained

    for batches in variants.values():
        step(batches[0])  # warm-up, untimed
    rates: dict[str, list[float]] = defaultdict(list)
    for r in range(args.rounds):
        for name, batches in variants.items():
            for batch in batches[1 + r * args.steps : 1 + (r + 1) * args.steps]:
                seconds, trained = step(batch)
                rates[name].append(trained / seconds)
    median = {name: statistics.median(values) for name, values in rates.items()}
    for name, value in median.items():
        print(f"{name:24s} {value:10,.0f} trainable tokens/s")
    ratio = median["packed (best-fit)"] / median["padded, 1 sample/row"]
    print(f"packed / padded: {ratio:.1f}x (target >= 2x)")


if __name__ == "__main__":
    main()
