"""Peak GPU memory and tokens/s of LongLoRA on the tinylm-0.5b shape at 8192 tokens, batch 1:
S²-Attn (`tinylm_s2attn`, groups of 8192 / 4) against full causal attention (`tinylm_varlen`).

The trained set is the product's (`tinylm_train.lora.add_lora` with the embeddings and norms):
LoRA r=8, alpha=16 on q/k/v/o plus the embedding (tied to the head) and every norm, fp32 weights
under bf16 autocast, gradient checkpointing on, AdamW on the trainable parameters. The vocabulary
is the Qwen1.5 one (151646 ids), so the embedding, its AdamW state and the logits are the real
model's. Peak = torch.cuda.max_memory_allocated over the timed steps (and the reserved figure),
against the 24 GiB card the issue targets. The first --warmup steps are left out of tokens/s.

Usage: uv run python tools/bench/bench_longlora_gpu.py [--length 8192] [--steps 6] [--warmup 2]
       [--json FILE]
Exits with status 2 and a message when no CUDA device is present.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

QWEN_VOCAB = 151646
CARD_GIB = 24


def measure(attention: str, *, length: int, steps: int, warmup: int) -> dict:
    import numpy as np
    import torch
    from transformers import Qwen2ForCausalLM

    from tinylm_train.collate import collate_blocks
    from tinylm_train.config import LoraSection
    from tinylm_train.long_context import group_size_for
    from tinylm_train.lora import add_lora
    from tinylm_train.models.qwen2 import build_config
    from tinylm_train.models.qwen2.attention import model_inputs, register_varlen_attention
    from tinylm_train.models.qwen2.shifted_sparse import register_s2_attention
    from tinylm_train.shards import Block

    register_varlen_attention()
    register_s2_attention()
    torch.manual_seed(0)
    config = build_config(
        "tinylm-0.5b",
        tokenizer_vocab_size=QWEN_VOCAB,
        eos_id=0,
        pad_id=0,
        attn_implementation=attention,
    )
    config.use_cache = False
    model = Qwen2ForCausalLM(config).cuda()
    model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    model = add_lora(
        model,
        LoraSection(r=8, alpha=16, target_modules=["q_proj", "k_proj", "v_proj", "o_proj"]),
        train_embeddings_and_norms=True,
    )
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-5)
    ids = np.random.default_rng(0).integers(1, QWEN_VOCAB, length).astype(np.int32)
    block = Block(input_ids=ids, doc_offsets=np.array([0, length], dtype=np.int32))
    inputs = model_inputs(
        collate_blocks([block]), attention, group_size=group_size_for(length, 0.25)
    )
    inputs = {k: v.cuda() if isinstance(v, torch.Tensor) else v for k, v in inputs.items()}

    def step() -> None:
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss = model(**inputs).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    for _ in range(warmup):
        step()
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    result = {
        "attention": attention,
        "tokens_per_s": steps * length / seconds,
        "peak_allocated_gib": torch.cuda.max_memory_allocated() / 2**30,
        "peak_reserved_gib": torch.cuda.max_memory_reserved() / 2**30,
    }
    return result  # why: the model and optimizer go with this frame before the next variant


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--length", type=int, default=8192)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--json", help="Write the figures here too.")
    args = parser.parse_args()

    import torch

    if not torch.cuda.is_available():
        print(
            "bench_longlora_gpu.py needs a CUDA GPU: torch.cuda.is_available() is False here "
            "(CPU figures: bench_s2attn.py).",
            file=sys.stderr,
        )
        return 2
    results = {}
    for name in ("tinylm_s2attn", "tinylm_varlen"):
        results[name] = measure(name, length=args.length, steps=args.steps, warmup=args.warmup)
        torch.cuda.empty_cache()
    s2, full = results["tinylm_s2attn"], results["tinylm_varlen"]
    print(f"tinylm-0.5b, {args.length} tokens, batch 1, bf16, gradient checkpointing, LoRA+:")
    print(f"{'':16}{'tokens/s':>12}{'peak GiB':>12}{'reserved':>12}")
    for name, r in results.items():
        print(
            f"{name:16}{r['tokens_per_s']:12.0f}{r['peak_allocated_gib']:12.2f}"
            f"{r['peak_reserved_gib']:12.2f}"
        )
    print(
        f"{'S2 / full':16}{s2['tokens_per_s'] / full['tokens_per_s']:11.2f}x"
        f"{s2['peak_allocated_gib'] / full['peak_allocated_gib']:11.2f}x"
    )
    fits = s2["peak_reserved_gib"] < CARD_GIB
    print(f"S²-Attn run fits one {CARD_GIB} GB card: {'yes' if fits else 'NO'}")
    results["device"] = torch.cuda.get_device_name()
    results["settings"] = vars(args)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump(results, handle, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
