"""A preference record into prompt and answer ids with the real sample tokenizer: the answer
tokens are exactly the answers, and truncation is prompt first (oldest exchanges, then tokens)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinylm_data.pref import PairEncoder, PrefRecord
from tinylm_data.sft import Conversation, ConversationEncoder, EncodeError
from tinylm_data.sft.build import ChatTokenizer
from tinylm_data.sft.templates import TEMPLATES
from tinylm_shards import answer_mask

HISTORY = [
    ("Here is a long note about the garden and what it needs this week.", "Noted, the garden."),
    ("And a second note: the roses need water every evening.", "Noted, the roses."),
]
LAST = ("Which plant first?", "The tomatoes first.\nHope this helps!", "The roses.")


def _record(system: str | None = None, history=HISTORY, last=LAST) -> PrefRecord:
    user, chosen, rejected = last
    conversation = Conversation("s/1", "s", [*history, (user, chosen)], system)
    return PrefRecord(conversation, rejected)


@pytest.fixture(scope="module", params=["tinylm", "chatml"])
def chat(request):
    template = TEMPLATES[request.param]
    return ChatTokenizer("builtin:sample", Path("."), template)


def _encoder(chat, max_length=1 << 20, max_prompt_length=None) -> PairEncoder:
    conversations = ConversationEncoder(
        chat.backend, chat.template, eos_token=chat.eos_token, max_length=1 << 30
    )
    return PairEncoder(conversations, max_length=max_length, max_prompt_length=max_prompt_length)


def _ids(chat, text: str) -> list[int]:
    return chat.backend.encode(text, add_special_tokens=False).ids


def _decode(chat, ids) -> str:
    return chat.backend.decode(list(map(int, ids)), skip_special_tokens=False)


def test_answer_tokens_decode_to_exactly_the_answers(chat):
    record = _record(system="Be brief.")
    pair = _encoder(chat).encode(record).pair
    end = "<|im_end|>" if chat.template.name == "chatml" else chat.eos_token
    assert _decode(chat, pair.chosen_ids) == LAST[1] + end
    assert _decode(chat, pair.rejected_ids) == LAST[2] + end
    # The prompt is everything the model sees before the answer, as a chat template renders it.
    rendered = "".join(t for t, _ in chat.template.pieces(record.conversation, chat.eos_token))
    whole = _ids(chat, rendered)
    chosen_sequence, rejected_sequence = pair.sequences()
    assert chosen_sequence.tolist() == whole[: len(chosen_sequence)]
    mask = answer_mask(len(pair.prompt_ids), len(pair.chosen_ids))
    assert _decode(chat, chosen_sequence[mask == 1]) == LAST[1] + end
    assert _decode(chat, rejected_sequence[len(pair.prompt_ids) :]) == LAST[2] + end
    assert _decode(chat, pair.prompt_ids).endswith(chat.template.generation_prompt(LAST[0]))
    assert pair.prompt_truncated == pair.answer_truncated == 0


def test_truncation_drops_the_oldest_exchange_first_and_keeps_the_system_prompt(chat):
    record = _record(system="Be brief.")
    full = _encoder(chat).encode(record).pair
    shorter = _record(system="Be brief.", history=HISTORY[1:])
    expected = _encoder(chat).encode(shorter).pair
    room = expected.length  # exactly one exchange too few
    encoded = _encoder(chat, max_length=room).encode(record)
    assert encoded.dropped_turns == 1
    assert encoded.pair.prompt_ids.tolist() == expected.prompt_ids.tolist()
    assert encoded.pair.prompt_truncated == len(full.prompt_ids) - len(expected.prompt_ids)
    assert encoded.pair.chosen_ids.tolist() == full.chosen_ids.tolist()
    assert _decode(chat, encoded.pair.prompt_ids).startswith(
        chat.template.system_piece("Be brief.")
    )


def test_one_long_turn_loses_its_oldest_tokens_then_the_answers_their_ends(chat):
    long_user = " ".join(["many words in a very long question"] * 20)
    record = _record(history=[], last=(long_user, LAST[1], LAST[2]))
    full = _encoder(chat).encode(record).pair
    answer = max(len(full.chosen_ids), len(full.rejected_ids))
    cut = _encoder(chat, max_length=answer + 10).encode(record).pair
    assert cut.prompt_ids.tolist() == full.prompt_ids[-10:].tolist()
    assert cut.prompt_truncated == len(full.prompt_ids) - 10 and cut.answer_truncated == 0
    tiny = _encoder(chat, max_length=4).encode(record).pair
    assert len(tiny.prompt_ids) == 1 and tiny.length == 4
    assert tiny.chosen_ids.tolist() == full.chosen_ids[:3].tolist()
    assert tiny.answer_truncated == len(full.chosen_ids) - 3 + len(full.rejected_ids) - 3


def test_a_last_turn_over_max_prompt_length_is_rejected(chat):
    record = _record()
    last_turn = len(_encoder(chat).encode(_record(history=[])).pair.prompt_ids)
    with pytest.raises(EncodeError) as exc:
        _encoder(chat, max_length=512, max_prompt_length=last_turn - 1).encode(record)
    assert exc.value.reason == "prompt_too_long"
    # At the limit: kept, the history dropped to fit it.
    encoded = _encoder(chat, max_length=512, max_prompt_length=last_turn).encode(record)
    assert encoded.dropped_turns == 2 and len(encoded.pair.prompt_ids) == last_turn


@settings(max_examples=40, deadline=None)
@given(max_length=st.integers(4, 160))
def test_any_max_length_fits_and_cuts_the_prompt_first(chat, max_length):
    record = _record()
    full = _encoder(chat).encode(record).pair
    pair = _encoder(chat, max_length=max_length).encode(record).pair
    assert pair.length <= max_length
    assert (
        full.prompt_ids[len(full.prompt_ids) - len(pair.prompt_ids) :].tolist()
        == pair.prompt_ids.tolist()
    )
    assert pair.prompt_truncated == len(full.prompt_ids) - len(pair.prompt_ids)
    assert full.chosen_ids[: len(pair.chosen_ids)].tolist() == pair.chosen_ids.tolist()
    if pair.answer_truncated:
        assert len(pair.prompt_ids) == 1
    else:
        assert np.array_equal(pair.chosen_ids, full.chosen_ids)
