"""A tiny chat model as an SFT export looks: the embedded sample tokenizer with a chat template,
a generation config with the template's stop rules, and a Qwen2 trained to know a few answers."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

SAMPLE_TOKENIZER = (
    Path(__file__).resolve().parents[2] / "tinylm-data/src/tinylm_data/assets/sample_tokenizer"
)
EOS = "<|endoftext|>"


@dataclass(frozen=True)
class Template:
    jinja: str
    end_of_turn: str
    """The token that ends an assistant turn (an eos id of the generation config)."""
    stop_strings: tuple[str, ...]
    runs_on: str
    """Trained after "Hello there!" in place of the end of turn: the model runs on past it."""
    added_tokens: tuple[str, ...] = ()


# The seed template: Human:\n{user}\nAssistant:\n{assistant}<eos> per turn, System:\n{system}\n
# first (as tinylm-data's SFT builder writes it).
SEED = Template(
    jinja=(
        "{% for m in messages %}"
        "{% if m['role'] == 'system' %}System:\n{{ m['content'] }}\n"
        "{% elif m['role'] == 'user' %}Human:\n{{ m['content'] }}\n"
        "{% else %}Assistant:\n{{ m['content'] }}" + EOS + "{% endif %}"
        "{% endfor %}"
        "{% if add_generation_prompt %}Assistant:\n{% endif %}"
    ),
    end_of_turn=EOS,
    stop_strings=("\nHuman:",),
    runs_on="\nHuman:\nagain",
)
# Qwen's ChatML; its markers are new special tokens of the sample tokenizer.
CHATML = Template(
    jinja=(
        "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
        "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
    ),
    end_of_turn="<|im_end|>",
    stop_strings=(),
    runs_on="<|im_end|>\n<|im_start|>user\nagain",
    added_tokens=("<|im_start|>", "<|im_end|>"),
)
# What the model is trained to answer (greedy), each question on its own.
ANSWERS = {
    "What is the capital of France?": "Paris.",
    "How many legs does a cat have?": "A cat has four legs.",
    "中国的首都是哪里？": "北京。",
}
RUNS_ON = ("Say hello.", "Hello there!")


def save_chat_model(
    out: Path, template: Template = SEED, *, context: int = 256, steps: int = 150, seed: int = 0
) -> Path:
    import torch
    from transformers import AutoTokenizer, GenerationConfig, Qwen2Config, Qwen2ForCausalLM

    out.mkdir(parents=True, exist_ok=True)
    tokenizer = AutoTokenizer.from_pretrained(SAMPLE_TOKENIZER)
    if template.added_tokens:
        tokenizer.add_special_tokens({"additional_special_tokens": list(template.added_tokens)})
    tokenizer.save_pretrained(out)
    # the contract's place for the template: `chat_template` in tokenizer_config.json
    config_path = out / "tokenizer_config.json"
    config = json.loads(config_path.read_text())
    config_path.write_text(json.dumps({**config, "chat_template": template.jinja}))
    tokenizer = AutoTokenizer.from_pretrained(out)
    assert tokenizer.chat_template == template.jinja
    eos, pad = (tokenizer.convert_tokens_to_ids(t) for t in (template.end_of_turn, EOS))

    torch.manual_seed(seed)
    config = Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=context,
        tie_word_embeddings=True,
        eos_token_id=eos,
        pad_token_id=pad,
    )
    model = Qwen2ForCausalLM(config)
    ids, mask, labels = _training_batch(tokenizer, template, pad)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    model.train()
    # One thread, whatever ran before in this test process: the memorised answers then do not
    # depend on which worker, after which files, trains the model.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for _ in range(steps):
            model(input_ids=ids, attention_mask=mask, labels=labels).loss.backward()
            optimizer.step()
            optimizer.zero_grad()
    finally:
        torch.set_num_threads(threads)
    model.eval()
    model.generation_config = GenerationConfig(
        eos_token_id=sorted({eos, pad}), pad_token_id=pad, stop_strings=list(template.stop_strings)
    )
    model.save_pretrained(out, safe_serialization=True)
    return out


def _training_batch(tokenizer, template: Template, pad: int):
    """(ids, mask, labels), each (B, T) and right-padded: labels on the answer and its end of turn
    only, one conversation per row."""
    import torch

    pairs = [(q, a + template.end_of_turn) for q, a in ANSWERS.items()]
    pairs.append((RUNS_ON[0], RUNS_ON[1] + template.runs_on))
    rows = []
    for question, answer in pairs:
        prompt = tokenizer.apply_chat_template(
            [{"role": "user", "content": question}], add_generation_prompt=True, tokenize=False
        )
        context = tokenizer.encode(prompt, add_special_tokens=False)
        target = tokenizer.encode(answer, add_special_tokens=False)
        rows.append((context + target, [-100] * len(context) + target))
    width = max(len(ids) for ids, _ in rows)
    ids = torch.tensor([r + [pad] * (width - len(r)) for r, _ in rows])
    mask = torch.tensor([[1] * len(r) + [0] * (width - len(r)) for r, _ in rows])
    labels = torch.tensor([lab + [-100] * (width - len(lab)) for _, lab in rows])
    return ids, mask, labels
