"""A tiny SFT-ed model and an authored preference set with a learnable rule, for DPO tests.

The rule: an answer that ends with the sign-off is chosen, one that ends otherwise is rejected.
The model is SFT-ed on both endings equally, so before DPO it prefers neither (about chance).
"""

from __future__ import annotations

import random
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[3]
SAMPLE_TOKENIZER = REPO_ROOT / "packages/tinylm-data/src/tinylm_data/assets/sample_tokenizer"
SIGN_OFF = " Have a nice day!"
# why: as many tokens as the sign-off (7 with the sample tokenizer), so a summed log-prob does not
# prefer the shorter answer before DPO
OTHER_ENDINGS = (
    " That is all for now.",
    " I do not know that.",
    " Please go away now.",
    " Ask a person instead.",
)
TOPICS = (
    "rivers",
    "mountains",
    "cats",
    "dogs",
    "bread",
    "music",
    "trains",
    "snow",
    "books",
    "tea",
    "birds",
    "the sea",
    "apples",
    "clocks",
    "gardens",
    "stars",
    "bridges",
    "rain",
    "maps",
    "salt",
)
ADJECTIVES = ("long", "cold", "old", "quiet", "bright", "small", "warm", "strange", "green", "fast")


def conversation(rng: random.Random) -> tuple[str, str]:
    topic = rng.choice(TOPICS)
    first, second = rng.sample(ADJECTIVES, 2)
    return f"User: tell me about {topic}.\nAssistant:", f" {topic} are {first} and {second}."


def preference_rows(tokenizer, count: int, seed: int) -> list[tuple[list, list, list]]:
    """(prompt ids, chosen ids, rejected ids): the same body, the sign-off chosen."""
    rng = random.Random(seed)
    eos = [tokenizer.eos_token_id]
    rows = []
    for _ in range(count):
        prompt, body = conversation(rng)
        ending = rng.choice(OTHER_ENDINGS)
        encode = tokenizer(prompt + body).input_ids
        prompt_ids = tokenizer(prompt).input_ids
        body_ids = encode[len(prompt_ids) :]
        chosen = body_ids + tokenizer(SIGN_OFF).input_ids + eos
        rejected = body_ids + tokenizer(ending).input_ids + eos
        rows.append((prompt_ids, chosen, rejected))
    return rows


def sft_model(directory: Path, *, steps: int = 60, seed: int = 0) -> Path:
    """A tiny random Qwen2 on the sample tokenizer, trained with plain transformers on the
    conversations with each ending equally often; saved (with the tokenizer) in `directory`."""
    import torch
    from transformers import AutoTokenizer, Qwen2Config, Qwen2ForCausalLM

    tokenizer = AutoTokenizer.from_pretrained(SAMPLE_TOKENIZER)
    torch.manual_seed(seed)
    config = Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=128,
        tie_word_embeddings=True,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        attn_implementation="sdpa",
    )
    model = Qwen2ForCausalLM(config)
    rng = random.Random(seed)
    endings = (SIGN_OFF, *OTHER_ENDINGS)
    texts = []
    for k in range(256):
        prompt, body = conversation(rng)
        texts.append(prompt + body + endings[k % len(endings)] + tokenizer.eos_token)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    model.train()
    for step in range(steps):
        batch = tokenizer(
            texts[(step * 16) % 256 : (step * 16) % 256 + 16], return_tensors="pt", padding=True
        )
        labels = batch.input_ids.masked_fill(batch.attention_mask == 0, -100)
        loss = model(**batch, labels=labels).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory
