"""Templates: rendered text per source format (snapshots), the label mask decoded back, and the
Jinja chat template in plain transformers giving the trained ids token for token."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from tinylm_data.sft import TEMPLATES, ConversationEncoder, EncodeError, read_conversations
from tinylm_data.sft.build import ChatTokenizer
from tinylm_data.sft.conversation import Conversation

SAMPLE_TOKENIZER = "builtin:sample"

RECORDS = {
    "alpaca": {"instruction": "Add the numbers.", "input": "2 and 3", "output": "5"},
    "sharegpt": {
        "conversations": [
            {"from": "system", "value": "Be brief."},
            {"from": "human", "value": "你好"},
            {"from": "gpt", "value": "你好！"},
            {"from": "human", "value": "Bye"},
            {"from": "gpt", "value": "Goodbye."},
        ]
    },
    "messages": {
        "messages": [
            {"role": "user", "content": "Name a colour."},
            {"role": "assistant", "content": "Blue."},
        ]
    },
}

SNAPSHOTS = {
    ("alpaca", "tinylm"): "Human:\nAdd the numbers.\n2 and 3\nAssistant:\n5<|endoftext|>",
    ("alpaca", "chatml"): (
        "<|im_start|>user\nAdd the numbers.\n2 and 3<|im_end|>\n<|im_start|>assistant\n5<|im_end|>\n"
    ),
    ("sharegpt", "tinylm"): (
        "System:\nBe brief.\nHuman:\n你好\nAssistant:\n你好！<|endoftext|>"
        "Human:\nBye\nAssistant:\nGoodbye.<|endoftext|>"
    ),
    ("sharegpt", "chatml"): (
        "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\n你好<|im_end|>\n"
        "<|im_start|>assistant\n你好！<|im_end|>\n<|im_start|>user\nBye<|im_end|>\n"
        "<|im_start|>assistant\nGoodbye.<|im_end|>\n"
    ),
    ("messages", "tinylm"): "Human:\nName a colour.\nAssistant:\nBlue.<|endoftext|>",
    ("messages", "chatml"): (
        "<|im_start|>user\nName a colour.<|im_end|>\n<|im_start|>assistant\nBlue.<|im_end|>\n"
    ),
}


def _conversation(kind: str, tmp_path: Path) -> Conversation:
    path = tmp_path / f"{kind}.jsonl"
    path.write_text(json.dumps(RECORDS[kind], ensure_ascii=False) + "\n", encoding="utf-8")
    (item,) = read_conversations(kind, path, source=kind)
    assert isinstance(item, Conversation), item
    return item


@pytest.fixture(scope="module", params=["tinylm", "chatml"])
def chat(request, tmp_path_factory):
    """(template name, ChatTokenizer, encoder, saved tokenizer dir) on the sample tokenizer."""
    tokenizer = ChatTokenizer(SAMPLE_TOKENIZER, Path.cwd(), TEMPLATES[request.param])
    directory = tmp_path_factory.mktemp(f"tok-{request.param}")
    tokenizer.save(directory)
    encoder = ConversationEncoder(
        tokenizer.backend,
        TEMPLATES[request.param],
        eos_token=tokenizer.eos_token,
        max_length=4096,
    )
    return request.param, tokenizer, encoder, directory


@pytest.mark.parametrize("kind", sorted(RECORDS))
def test_rendered_text_per_source_format(kind, chat, tmp_path):
    name, _, encoder, _ = chat
    assert encoder.render(_conversation(kind, tmp_path)) == SNAPSHOTS[kind, name]


def _terminator(name: str) -> str:
    return "<|im_end|>" if name == "chatml" else "<|endoftext|>"


def _masked_runs(tokenizer, encoded) -> list[str]:
    """The trained tokens decoded, one string per contiguous run."""
    runs, current = [], []
    for token, trained in zip(encoded.tokens.tolist(), encoded.loss_mask.tolist(), strict=True):
        if trained:
            current.append(token)
        elif current:
            runs.append(current)
            current = []
    if current:
        runs.append(current)
    return [tokenizer.backend.decode(run, skip_special_tokens=False) for run in runs]


@pytest.mark.parametrize("kind", sorted(RECORDS))
def test_mask_decodes_to_exactly_the_assistant_texts(kind, chat, tmp_path):
    name, tokenizer, encoder, _ = chat
    conversation = _conversation(kind, tmp_path)
    encoded = encoder.encode(conversation)
    assert _masked_runs(tokenizer, encoded) == [
        a + _terminator(name) for _, a in conversation.turns
    ]
    assert encoded.loss_mask[0] == 0


TEXT = (
    st.lists(
        st.sampled_from([*"abc XYZ 01,.!?\n你好世界，。", "Human:", "Assistant", "  "]), max_size=20
    )
    .map(lambda parts: "".join(parts).strip())
    .filter(bool)
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    system=st.none() | TEXT,
    turns=st.lists(st.tuples(TEXT, TEXT), min_size=1, max_size=4),
)
def test_mask_property_any_conversation(chat, system, turns):
    name, tokenizer, encoder, _ = chat
    conversation = Conversation("p/1", "p", turns, system)
    try:
        encoded = encoder.encode(conversation)
    except EncodeError as exc:  # a merge across a piece boundary: refused, never mis-masked
        assert exc.reason == "token_boundary"
        assume(False)
    assert _masked_runs(tokenizer, encoded) == [a + _terminator(name) for _, a in turns]
    decoded = tokenizer.backend.decode(encoded.tokens.tolist(), skip_special_tokens=False)
    assert decoded == encoder.render(conversation)
    terminator = tokenizer.backend.token_to_id(_terminator(name))
    # the terminator is trained in every turn, also when it is the pad token (pad == eos here)
    ends = encoded.tokens == terminator
    assert int(encoded.loss_mask[ends].sum()) == len(turns)
    if name == "tinylm":
        assert terminator == tokenizer.info.pad_id and encoded.loss_mask[ends].all()


@pytest.mark.slow
def test_chat_template_in_transformers_gives_the_trained_prompt(chat, tmp_path):
    from transformers import AutoTokenizer

    name, tokenizer, encoder, directory = chat
    hf = AutoTokenizer.from_pretrained(str(directory))
    conversation = _conversation("sharegpt", tmp_path)
    encoded = encoder.encode(conversation)
    messages = conversation.messages()
    whole = hf.apply_chat_template(messages, tokenize=True, return_dict=False)
    assert list(whole) == encoded.tokens.tolist()
    # The prompt for the last answer: everything before the answer's first trained token.
    prompt = hf.apply_chat_template(
        messages[:-1], add_generation_prompt=True, tokenize=True, return_dict=False
    )
    last_answer_start = (
        len(encoded.tokens)
        - len(
            tokenizer.backend.encode(
                messages[-1]["content"] + _terminator(name), add_special_tokens=False
            ).ids
        )
        - (1 if name == "chatml" else 0)
    )
    assert list(prompt) == encoded.tokens[:last_answer_start].tolist()
    assert (
        encoded.loss_mask[last_answer_start - 1] == 0 and encoded.loss_mask[last_answer_start] == 1
    )
    for token in TEMPLATES[name].special_tokens:
        assert len(hf.encode(token, add_special_tokens=False)) == 1, f"{token} is one token"
    assert hf.pad_token_id == hf.eos_token_id == tokenizer.loaded.info.eos_id
    assert np.all(np.isin(TEMPLATES[name].stop_tokens(tokenizer.eos_token), list(hf.get_vocab())))
