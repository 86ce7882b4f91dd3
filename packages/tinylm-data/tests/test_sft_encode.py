"""Truncation at exchange boundaries, answers cut inside, and the refusals of the encoder."""

from __future__ import annotations

from pathlib import Path

import pytest

from tinylm_data.sft import TEMPLATES, ConversationEncoder, EncodeError
from tinylm_data.sft.build import ChatTokenizer
from tinylm_data.sft.conversation import Conversation


@pytest.fixture(scope="module")
def tokenizer():
    return ChatTokenizer("builtin:sample", Path.cwd(), TEMPLATES["tinylm"])


def _encoder(tokenizer, max_length: int, truncation: str = "earliest") -> ConversationEncoder:
    return ConversationEncoder(
        tokenizer.backend,
        TEMPLATES["tinylm"],
        eos_token=tokenizer.eos_token,
        max_length=max_length,
        truncation=truncation,
    )


TURNS = [
    ("First question?", "First answer."),
    ("Second question?", "Second answer."),
    ("Third question?", "Third answer."),
]
SYSTEM = "You are terse."


def _length(tokenizer, conversation) -> int:
    return len(_encoder(tokenizer, 10_000).encode(conversation).tokens)


def _decoded(tokenizer, encoded) -> str:
    return tokenizer.backend.decode(encoded.tokens.tolist(), skip_special_tokens=False)


def test_fits_whole(tokenizer):
    conversation = Conversation("t/1", "t", TURNS, SYSTEM)
    encoded = _encoder(tokenizer, 10_000).encode(conversation)
    assert (encoded.turns, encoded.dropped_turns, encoded.cut_answer) == (3, 0, False)


@pytest.mark.parametrize(
    ("truncation", "kept"), [("earliest", ["First", "Second"]), ("latest", ["Second", "Third"])]
)
def test_too_long_keeps_whole_exchanges(tokenizer, truncation, kept):
    conversation = Conversation("t/1", "t", TURNS, SYSTEM)
    two = Conversation("t/2", "t", [t for t in TURNS if t[0].split()[0] in kept], SYSTEM)
    limit = _length(tokenizer, two) + 1  # room for two exchanges, not three
    encoded = _encoder(tokenizer, limit, truncation).encode(conversation)
    assert (encoded.turns, encoded.dropped_turns, encoded.cut_answer) == (2, 1, False)
    assert _decoded(tokenizer, encoded) == _decoded(
        tokenizer, _encoder(tokenizer, limit).encode(two)
    )
    assert _decoded(tokenizer, encoded).startswith("System:\nYou are terse.\n")


@pytest.mark.parametrize("truncation", ["earliest", "latest"])
def test_one_exchange_too_long_is_cut_inside_the_answer(tokenizer, truncation):
    long_answer = " ".join(f"word{k}" for k in range(200))
    conversation = Conversation("t/1", "t", [("Say many words.", long_answer)], None)
    encoded = _encoder(tokenizer, 40, truncation).encode(conversation)
    assert len(encoded.tokens) == 40 and encoded.cut_answer
    text = _decoded(tokenizer, encoded)
    assert text.startswith("Human:\nSay many words.\nAssistant:\nword0 word1")
    assert not text.endswith("<|endoftext|>"), "an answer cut short gets no terminator"
    trained = tokenizer.backend.decode(encoded.tokens[encoded.loss_mask == 1].tolist())
    assert long_answer.startswith(trained) and trained


def test_latest_cuts_the_last_exchange_when_none_fits(tokenizer):
    long_answer = " ".join(f"word{k}" for k in range(200))
    turns = [("Short one?", "Yes."), ("Say many words.", long_answer)]
    encoded = _encoder(tokenizer, 60, "latest").encode(Conversation("t/1", "t", turns, SYSTEM))
    text = _decoded(tokenizer, encoded)
    assert encoded.cut_answer and encoded.dropped_turns == 1
    assert text.startswith("System:\nYou are terse.\nHuman:\nSay many words.")


def test_prompt_longer_than_the_limit_has_no_trainable_token(tokenizer):
    conversation = Conversation("t/1", "t", [("question " * 100, "answer")], None)
    with pytest.raises(EncodeError) as info:
        _encoder(tokenizer, 32).encode(conversation)
    assert info.value.reason == "no_trainable_tokens"


def test_a_merge_across_pieces_is_refused():
    # A byte-level BPE without the pre-tokenizer regex merges across any boundary: trained on
    # "Assistant:\nthere", it makes ":\nthere" tokens that the pieces tokenized apart cannot.
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=["<|endoftext|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    backend.train_from_iterator(["Human:\nHi\nAssistant:\nthere"] * 50, trainer=trainer)
    encoder = ConversationEncoder(
        backend, TEMPLATES["tinylm"], eos_token="<|endoftext|>", max_length=512
    )
    with pytest.raises(EncodeError) as info:
        encoder.encode(Conversation("t/1", "t", [("Hi", "there")], None))
    assert info.value.reason == "token_boundary"
