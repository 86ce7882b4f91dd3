import random

import pytest
from chat_test_helpers import SAMPLE_TOKENIZER
from hypothesis import given, settings
from hypothesis import strategies as st

from tinylm_eval.passkey_prompts import (
    LANGUAGES,
    build_prompt,
    draw_key,
    message_text,
    plain_render,
    prompt_grid,
    training_conversations,
)


@pytest.fixture(scope="module")
def encode():
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(SAMPLE_TOKENIZER)
    return lambda text: tokenizer.encode(text, add_special_tokens=False)


def sentence_tokens(encode, language):
    return max(len(encode(s)) for s in LANGUAGES[language].filler)


@settings(max_examples=25, deadline=None)
@given(
    length=st.integers(120, 1500),
    depth=st.floats(0, 1),
    key=st.text("0123456789", min_size=1, max_size=8),
    language=st.sampled_from(sorted(LANGUAGES)),
)
def test_the_prompt_fills_the_length_and_holds_the_key_at_its_depth(
    encode, length, depth, key, language
):
    prompt = build_prompt(
        encode, plain_render(language), length=length, depth=depth, key=key, language=language
    )
    assert prompt.tokens == len(encode(prompt.text)) <= length
    # short of the length by less than one filler sentence (and the joiner between sentences)
    assert length - prompt.tokens <= sentence_tokens(encode, language) + 1
    lang = LANGUAGES[language]
    needle = lang.needle.format(key=key)
    assert prompt.text.count(needle) == 1 and prompt.text.startswith(prompt.message)
    n = prompt.filler_sentences
    assert abs(prompt.key_after / n - depth) <= 0.5 / n
    # the key sentence follows exactly key_after filler sentences
    before = prompt.message[len(lang.instruction) + 1 : prompt.message.index(needle)]
    assert sum(before.count(s) for s in set(lang.filler)) == prompt.key_after


def test_depth_zero_and_one_put_the_key_first_and_last(encode):
    for depth, where in ((0.0, "first"), (1.0, "last")):
        prompt = build_prompt(encode, plain_render(), length=300, depth=depth, key="4711")
        lines = prompt.message.split("\n")
        haystack = lines[1]
        assert len(lines) == 3 and lines[2] == LANGUAGES["en"].question
        needle = LANGUAGES["en"].needle.format(key="4711")
        assert haystack.startswith(needle) if where == "first" else haystack.endswith(needle)


def test_a_length_too_short_for_the_key_is_an_error(encode):
    with pytest.raises(ValueError, match="too short"):
        build_prompt(encode, plain_render(), length=20, depth=0.5, key="123")
    with pytest.raises(ValueError, match="depth"):
        build_prompt(encode, plain_render(), length=200, depth=1.5, key="123")


def test_the_render_is_counted_the_template_included(encode):
    def templated(message):
        return f"Human:\n{message}\nAssistant:\n"

    plain = build_prompt(encode, lambda m: m, length=400, depth=0.5, key="99")
    chat = build_prompt(encode, templated, length=400, depth=0.5, key="99")
    assert chat.text == templated(chat.message) and chat.tokens <= 400
    assert chat.filler_sentences <= plain.filler_sentences


def test_the_grid_is_seeded_per_cell(encode):
    options = dict(depths=(0.0, 0.5), trials=3, key_digits=6, language="en")
    first = prompt_grid(encode, plain_render(), lengths=(200,), seed=7, **options)
    again = prompt_grid(encode, plain_render(), lengths=(200, 300), seed=7, **options)
    other = prompt_grid(encode, plain_render(), lengths=(200,), seed=8, **options)
    assert [p.text for p in first] == [p.text for p in again[: len(first)]]
    assert [p.key for p in first] != [p.key for p in other]
    assert [(p.length, p.depth) for p in again] == [
        (n, d) for n in (200, 300) for d in (0.0, 0.5) for _ in range(3)
    ]
    assert all(len(p.key) == 6 and p.key.isdigit() for p in again)


def test_keys_are_uniform_digits_with_leading_zeros():
    rng = random.Random(0)
    keys = [draw_key(rng, 3) for _ in range(5000)]
    first = [k[0] for k in keys]
    assert all(len(k) == 3 for k in keys) and "0" in first
    assert all(350 < first.count(d) < 650 for d in "0123456789")  # 500 expected each


def test_the_filler_holds_no_digit():
    for lang in LANGUAGES.values():
        assert not any(c.isdigit() for c in lang.instruction + "".join(lang.filler) + lang.question)
        assert "{key}" in lang.needle


def test_training_conversations_come_from_the_same_builder(encode):
    records = list(
        training_conversations(encode, lengths=(150, 250), samples=6, key_digits=4, seed=3)
    )
    assert records == list(
        training_conversations(encode, lengths=(150, 250), samples=6, key_digits=4, seed=3)
    )
    assert len({r["id"] for r in records}) == 6
    for index, record in enumerate(records):
        user, assistant = record["messages"]
        assert user["role"] == "user" and assistant["role"] == "assistant"
        key = assistant["content"]
        assert len(key) == 4 and LANGUAGES["en"].needle.format(key=key) in user["content"]
        assert len(encode(user["content"])) <= (150, 250)[index % 2]
        assert user["content"].startswith(message_text("en", key, 0, 0).split("\n")[0])
