"""One template from data to chat: `tinylm-data sft build` renders and masks the conversations,
`tinylm-train sft` fine-tunes on them, and `tinylm-eval chat --prompt` (and batch `generate`) answer
in the chat template the export carries. A small model made to memorise a handful of question/answer pairs answers each
exactly (greedy), which it can do only if the prompt at chat time is the prompt it was trained on."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_run import run_cli as _run
from cli_run import save_random_qwen2

pytestmark = pytest.mark.slow  # builds, trains 150 small steps, chats (about a minute)

PAIRS = [
    ("What is the capital of France?", "Paris."),
    ("中国的首都是哪里？", "北京。"),
    ("How many legs does a spider have?", "Eight legs."),
    ("水在多少度沸腾？", "一百摄氏度。"),
]


@pytest.fixture(scope="module")
def chat_model(tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("sft-e2e")
    records = [{"instruction": q, "input": "", "output": a} for q, a in PAIRS]
    (work / "pairs.json").write_text(json.dumps(records, ensure_ascii=False), encoding="utf-8")
    held_out = [{"instruction": "What colour is the sky?", "input": "", "output": "Blue."}]
    (work / "held_out.json").write_text(json.dumps(held_out), encoding="utf-8")
    (work / "sft.yaml").write_text(
        "name: memorise\n"
        "tokenizer: builtin:sample\n"
        "template: tinylm\n"
        "max_length: 64\n"
        "pack_mode: bestfit\n"
        "augment: {enabled: false}\n"
        "sources:\n"
        "  - {name: pairs, kind: alpaca, paths: [pairs.json], heldout_share: 0.0}\n"
        "  - {name: held_out, kind: alpaca, paths: [held_out.json], heldout_share: 0.99}\n",
        encoding="utf-8",
    )
    _run("tinylm-data", "sft", "build", "--config", "sft.yaml", "--out", "out", cwd=work)

    save_random_qwen2(work / "base", vocab_size=8000)
    (work / "train.yaml").write_text(
        "output_dir: run\n"
        "model: {init_from: base}\n"
        "data: {path: out/memorise, per_device_batch_size: 4}\n"
        "optimisation: {max_steps: 150, learning_rate: 3.0e-3, warmup_steps: 5, weight_decay: 0.0}\n"
        "checkpoint: {save_steps: 1000}\n",
        encoding="utf-8",
    )
    _run("tinylm-train", "sft", "--config", "train.yaml", cwd=work)
    return work / "run" / "final"


def test_the_export_carries_the_template_the_data_was_rendered_in(chat_model):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(chat_model)
    question, answer = PAIRS[0]
    rendered = tokenizer.apply_chat_template(
        [{"role": "user", "content": question}, {"role": "assistant", "content": answer}],
        tokenize=False,
    )
    assert rendered == f"Human:\n{question}\nAssistant:\n{answer}<|endoftext|>"


def test_the_chat_answers_a_memorised_question_exactly(chat_model):
    question, answer = PAIRS[1]
    said = _run(
        "tinylm-eval",
        "chat",
        "--model",
        str(chat_model),
        "--prompt",
        question,
        "--temperature",
        "0",
        "--repetition-penalty",
        "1.0",
        "--max-new-tokens",
        "24",
        cwd=chat_model.parent,
    )
    assert said.strip() == answer


def test_batch_generation_answers_every_memorised_question_exactly(chat_model):
    prompts = chat_model.parent / "prompts.jsonl"
    lines = [json.dumps({"prompt": q}, ensure_ascii=False) for q, _ in PAIRS]
    prompts.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = chat_model.parent / "answers.jsonl"
    _run(
        "tinylm-eval",
        "generate",
        "--model",
        str(chat_model),
        "--prompts",
        str(prompts),
        "--out",
        str(out),
        "--max-new-tokens",
        "24",
        cwd=chat_model.parent,
    )
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [row["output"] for row in rows] == [a for _, a in PAIRS]
