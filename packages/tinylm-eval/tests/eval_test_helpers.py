"""Tiny real components for tests: a byte-level BPE tokenizer and a random Qwen2 model saved to disk."""

from __future__ import annotations

from pathlib import Path

from tinylm_eval.data import SAMPLE_DIR


def _sample_text() -> list[str]:
    return (
        [p.read_text(encoding="utf-8") for p in sorted(SAMPLE_DIR.rglob("*.csv"))] * 3
        + ["The following are multiple choice questions (with answers) about\n答案：题目："]
        + ["Answer: A Answer: B Answer: C Answer: D 答案：A 答案是：B 答案：C 答案：D"] * 50
    )


def train_tokenizer(out: Path):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=600,
        special_tokens=["<|endoftext|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(_sample_text(), trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, eos_token="<|endoftext|>", pad_token="<|endoftext|>"
    )
    fast.save_pretrained(out)
    return fast


def save_tiny_qwen2(out: Path, vocab_size: int, seed: int = 0) -> Path:
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(seed)
    config = Qwen2Config(
        vocab_size=vocab_size,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=2048,
        tie_word_embeddings=False,
    )
    model = Qwen2ForCausalLM(config)
    model.save_pretrained(out, safe_serialization=True)
    return out
