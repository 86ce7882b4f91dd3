"""CPU training throughput of tinylm-train on the sample shards, each figure against its baseline.

Three comparisons, all with the same model and optimizer step (forward, backward, AdamW):
  masking   tokens/s of packed 1024-token blocks with document masking against the same blocks as
            plain causal sequences (attention crossing documents): the SDPA block mask derived from
            the positions, and per-document SDPA (`tinylm_varlen` off CUDA). Target: cost <= 10%.
  packing   effective (non-pad) tokens/s of packed blocks against one document per row, padded
            to the block size and, a stronger baseline, to the longest document of the batch.
            Target: packed >= 2x. Documents are the sample's documents (split pieces rejoined).
  loader    tokens/s the shard reader + collator deliver against the tokens/s training consumes.
            Target: >= 10x.
Timings are medians over interleaved rounds (the variants alternate, so a busy machine affects
them alike).

Usage: OMP_NUM_THREADS=1 uv run python tools/bench/bench_train.py [--data OUT/sample]
       [--model cpu-small] [--batch 2] [--rounds 3] [--steps 3]
Without --data the sample is built into a temporary directory with `tinylm-data build`.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import torch
from transformers import Qwen2ForCausalLM

from tinylm_train.collate import IGNORE_INDEX, collate_blocks
from tinylm_train.models.qwen2 import build_config
from tinylm_train.models.qwen2.attention import VARLEN_NAME, model_inputs, register_varlen_attention
from tinylm_train.shards import ShardReader, load_manifest


def sample_data(data: str | None) -> Path:
    if data:
        return Path(data)
    out = Path(tempfile.mkdtemp(prefix="bench-train-"))
    entry = Path(sys.executable).with_name("tinylm-data")
    subprocess.run(
        [str(entry), "build", "--source", "sample", "--out", str(out), "--workers", "1"],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return out / "sample"


def documents(data: Path) -> list[np.ndarray]:
    """The dataset's documents, split pieces rejoined by doc id (concat packing keeps them adjacent)."""
    manifest = load_manifest(data)
    docs: list[np.ndarray] = []
    last_id = None
    for shard in manifest.shards:
        table = pq.read_table(
            manifest.root / shard["path"], columns=["input_ids", "doc_offsets", "doc_ids"]
        )
        for ids, offsets, doc_ids in zip(
            *(table.column(c).to_pylist() for c in table.column_names), strict=True
        ):
            for start, end, doc_id in zip(offsets[:-1], offsets[1:], doc_ids, strict=True):
                piece = np.asarray(ids[start:end], dtype=np.int64)
                if doc_id == last_id:
                    docs[-1] = np.concatenate([docs[-1], piece])
                else:
                    docs.append(piece)
                last_id = doc_id
    return docs


def padded_batch(docs: list[np.ndarray], width: int, pad_id: int) -> dict:
    """One document per row, right-padded to `width` (longer documents cut); no loss on padding."""
    rows = len(docs)
    input_ids = np.full((rows, width), pad_id, dtype=np.int64)
    labels = np.full((rows, width), IGNORE_INDEX, dtype=np.int64)
    for r, doc in enumerate(docs):
        doc = doc[:width]
        input_ids[r, : len(doc)] = doc
        labels[r, 1 : len(doc)] = doc[1:]
    # why: causal attention with right padding never lets a real token see a pad, so no mask.
    return {
        "input_ids": torch.from_numpy(input_ids),
        "labels": torch.from_numpy(labels),
        "use_cache": False,
    }


class Runner:
    """One model per attention implementation, same initial weights, timed train steps."""

    def __init__(self, model: str, vocab: int, eos: int, pad: int) -> None:
        register_varlen_attention()
        self.models = {}
        state = None
        for attention in ("sdpa", VARLEN_NAME):
            config = build_config(
                model,
                tokenizer_vocab_size=vocab,
                eos_id=eos,
                pad_id=pad,
                attn_implementation=attention,
            )
            torch.manual_seed(0)
            net = Qwen2ForCausalLM(config)
            if state is None:
                state = net.state_dict()
            net.load_state_dict(state)
            self.models[attention] = (net, torch.optim.AdamW(net.parameters(), lr=1e-4))

    def step(self, attention: str, inputs: dict) -> float:
        net, opt = self.models[attention]
        start = time.perf_counter()
        net(**inputs).loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", help="Shard dataset (OUT/<name> or a version directory).")
    parser.add_argument("--model", default="cpu-small")
    parser.add_argument("--batch", type=int, default=2, help="Rows per step.")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=3, help="Timed steps per variant per round.")
    args = parser.parse_args()

    data = sample_data(args.data)
    manifest = load_manifest(data)
    block = manifest.block_size
    print(
        f"data {manifest.root.name}: {manifest.num_blocks} blocks of {block}; model {args.model}, "
        f"{args.batch} rows per step, {torch.get_num_threads()} thread(s)"
    )
    runner = Runner(args.model, manifest.vocab_size, manifest.eos_id, manifest.pad_id)
    reader = ShardReader(data, seed=0)
    packed_blocks = [
        [reader.next_block() for _ in range(args.batch)] for _ in range(args.steps + 1)
    ]
    packed = [collate_blocks(blocks) for blocks in packed_blocks]
    packed_real = [sum(int(b.doc_offsets[-1]) for b in blocks) for blocks in packed_blocks]
    docs = documents(data)
    rng = np.random.default_rng(0)
    doc_batches = [
        [docs[i] for i in rng.choice(len(docs), size=args.batch, replace=False)]
        for _ in range(args.steps + 1)
    ]
    lengths = np.array([len(d) for d in docs])
    print(
        f"{len(docs)} documents, length median {np.median(lengths):.0f}, mean {lengths.mean():.0f}, "
        f"p90 {np.percentile(lengths, 90):.0f}, max {lengths.max()} (cut at {block} when padded)"
    )

    def unmasked(b: dict) -> dict:
        inputs = model_inputs(b, "sdpa")
        inputs["position_ids"] = (
            None  # plain causal over the whole block: attention crosses documents
        )
        return inputs

    padded_real = [sum(min(len(d), block) for d in batch) for batch in doc_batches]
    variants = {  # name: (attention, batches, non-pad tokens per batch)
        "packed, no document mask": ("sdpa", [unmasked(b) for b in packed], packed_real),
        "packed, SDPA block mask": ("sdpa", [model_inputs(b, "sdpa") for b in packed], packed_real),
        "packed, per-document SDPA": (
            VARLEN_NAME,
            [model_inputs(b, VARLEN_NAME) for b in packed],
            packed_real,
        ),
        "padded to block, 1 doc/row": (
            "sdpa",
            [padded_batch(d, block, manifest.pad_id) for d in doc_batches],
            padded_real,
        ),
        "padded to longest, 1 doc/row": (
            "sdpa",
            [padded_batch(d, min(block, max(map(len, d))), manifest.pad_id) for d in doc_batches],
            padded_real,
        ),
    }
    seconds: dict[str, list[float]] = defaultdict(list)
    tokens: dict[str, list[int]] = defaultdict(list)
    for attention, batches, _ in variants.values():  # warm-up, untimed
        runner.step(attention, batches[0])
    for _ in range(args.rounds):
        for name, (attention, batches, real) in variants.items():
            for inputs, count in zip(batches[1:], real[1:], strict=True):
                seconds[name].append(runner.step(attention, inputs))
                tokens[name].append(count)

    slots = args.batch * block
    rate = {}
    print(f"\n{'variant':32} {'s/step':>8} {'slot tok/s':>11} {'real tok/s':>11}")
    for name in variants:
        per_step = statistics.median(seconds[name])
        real = statistics.mean(tokens[name])
        width = variants[name][1][1]["input_ids"].shape[1]
        rate[name] = real / per_step
        print(f"{name:32} {per_step:8.3f} {args.batch * width / per_step:11.0f} {rate[name]:11.0f}")

    base = "packed, no document mask"
    print("\nmasking cost (target <= 10%): packed tokens/s lost against no document mask")
    for name in ("packed, SDPA block mask", "packed, per-document SDPA"):
        print(f"  {name:30} {1 - rate[name] / rate[base]:+7.1%}")
    best = max(("packed, SDPA block mask", "packed, per-document SDPA"), key=rate.get)
    print(f"\npacking gain (target >= 2x): effective tokens/s of '{best}' against")
    for name in ("padded to block, 1 doc/row", "padded to longest, 1 doc/row"):
        print(f"  {name:30} {rate[best] / rate[name]:7.2f}x")

    # The loader as the trainer runs it: reader (memory-mapped row groups) + collator + inputs.
    loader = ShardReader(data, seed=1)
    n_batches = max(50, 2 * manifest.num_blocks // args.batch)
    start = time.perf_counter()
    for _ in range(n_batches):
        model_inputs(collate_blocks([loader.next_block() for _ in range(args.batch)]), VARLEN_NAME)
    loader_rate = n_batches * slots / (time.perf_counter() - start)
    train_rate = slots / statistics.median(seconds[best])
    print(
        f"\nloader (target >= 10x): {loader_rate:,.0f} tokens/s delivered, training consumes "
        f"{train_rate:,.0f} tokens/s ({best}): {loader_rate / train_rate:,.0f}x"
    )


if __name__ == "__main__":
    main()
