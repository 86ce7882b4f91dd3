"""The conversation core on the stand-in model (no torch): history fitting, streamed stop cuts,
the session's turns and the terminal loop."""

import io

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tinylm_eval.chat import ChatSession, HistoryError, fit_history
from tinylm_eval.chat.terminal import run_terminal
from tinylm_eval.models import DummyModel, GenerationOptions
from tinylm_eval.models.base import cut_at_stop, stream_cut_at_stop


def turns(n: int, size: int = 10) -> list[dict]:
    """n user/assistant pairs of `size` characters each, then a user message."""
    out = []
    for i in range(n):
        out += [
            {"role": "user", "content": f"{i}q".ljust(size, "q")},
            {"role": "assistant", "content": f"{i}a".ljust(size, "a")},
        ]
    return out + [{"role": "user", "content": "last"}]


def prompt_length(model, messages) -> int:
    return len(model.encode(model.chat_prompt(messages)))


def test_history_that_fits_is_kept_whole():
    model = DummyModel(context_length=1000)
    messages = [{"role": "system", "content": "be brief"}, *turns(3)]
    kept, prompt = fit_history(model, messages, answer_tokens=100)
    assert kept == messages and prompt == model.chat_prompt(messages)


def test_the_oldest_whole_turns_go_first_and_the_system_prompt_stays():
    messages = [{"role": "system", "content": "be brief"}, *turns(5)]
    system, rest = messages[:1], messages[1:]
    # room for the system prompt, the last two pairs and the last message, not three pairs
    room = prompt_length(DummyModel(), system + rest[-5:])
    model = DummyModel(context_length=room + 50)
    kept, _ = fit_history(model, messages, answer_tokens=50)
    assert kept == system + rest[-5:]
    assert prompt_length(model, kept) + 50 <= model.context_length
    assert prompt_length(model, system + rest[-7:]) + 50 > model.context_length


@given(pairs=st.integers(0, 8), size=st.integers(1, 30), context=st.integers(20, 400))
def test_fitted_history_is_the_longest_suffix_of_whole_turns_that_fits(pairs, size, context):
    model = DummyModel(context_length=context)
    messages = turns(pairs, size)
    fitting = [
        messages[i:]
        for i in range(0, len(messages), 2)
        if prompt_length(model, messages[i:]) + 10 <= context
    ]
    if not fitting:
        with pytest.raises(HistoryError, match="too long"):
            fit_history(model, messages, answer_tokens=10)
        return
    kept, _ = fit_history(model, messages, answer_tokens=10)
    assert kept == fitting[0] and kept[0]["role"] == "user"


def test_a_message_that_cannot_fit_and_malformed_histories_are_errors():
    model = DummyModel(context_length=64)
    with pytest.raises(
        HistoryError, match="its prompt is 318 tokens, .* minus 16 for the answer leaves 48"
    ):
        fit_history(model, [{"role": "user", "content": "x" * 300}], answer_tokens=16)
    with pytest.raises(HistoryError, match="leaves no room"):
        fit_history(model, turns(0), answer_tokens=64)
    bad = [
        ([], "last message must be the user's"),
        (turns(1)[:2], "last message must be the user's"),
        ([{"role": "user", "content": 3}], r"messages\[0\]: content must be a string"),
        ([{"role": "bot", "content": "x"}], r"messages\[0\]: role 'bot'"),
        (turns(1)[:1] + [{"role": "system", "content": "late"}] + turns(0), r"messages\[1\]"),
        (["hello"], "an object with role and content"),
    ]
    for messages, message in bad:
        with pytest.raises(HistoryError, match=message):
            fit_history(model, messages, answer_tokens=8)


texts = st.text(alphabet="ab\nH:", max_size=40)
stops = st.lists(st.text(alphabet="ab\nH:", min_size=1, max_size=5), max_size=3)


@given(text=texts, stop=stops, cuts=st.lists(st.integers(0, 40), max_size=8))
def test_streamed_pieces_join_to_the_whole_text_cut_at_its_first_stop(text, stop, cuts):
    bounds = sorted({0, len(text), *(c for c in cuts if c <= len(text))})
    pieces = [text[a:b] for a, b in zip(bounds, bounds[1:], strict=False)]
    streamed = list(stream_cut_at_stop(iter(pieces), stop))
    assert "".join(streamed) == cut_at_stop(text, stop)
    assert all(streamed)


def test_streaming_ends_at_a_stop_without_reading_further():
    def pieces():
        yield from ("Hello", " there\nHu", "man:", " more")
        raise AssertionError("read past the stop")

    assert list(stream_cut_at_stop(pieces(), ["\nHuman:"])) == ["Hello th", "ere"]


def test_a_session_keeps_its_turns_and_reset_forgets_them():
    model = DummyModel()
    options = GenerationOptions(max_new_tokens=14)
    session = ChatSession(model, options, system="be brief")
    first = "".join(session.ask("hi"))
    opening = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}]
    assert first == model.generate([model.chat_prompt(opening)], options)[0]
    second = "".join(session.ask("and then?"))
    history = [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": first},
        {"role": "user", "content": "and then?"},
    ]
    assert second == model.generate([model.chat_prompt(history)], options)[0]
    assert session.turns == history[1:] + [{"role": "assistant", "content": second}]
    session.reset()
    assert session.turns == [] and "".join(session.ask("hi")) == first


def test_the_terminal_streams_answers_and_knows_its_commands():
    model = DummyModel()
    options = GenerationOptions(max_new_tokens=7)
    session = ChatSession(model, options)
    lines = iter(["hi", "", "/reset", "/nope", "hi", "x" * 3000, "/exit", "never read"])
    out = io.StringIO()
    answers = run_terminal(session, read=lambda _: next(lines), out=out)
    want = model.generate([model.chat_prompt([{"role": "user", "content": "hi"}])], options)[0]
    text = out.getvalue()
    assert answers == 2 and text.count(f"model> {want}\n") == 2
    assert "(conversation reset)" in text and "(unknown command /nope" in text
    assert "(not answered: the message is too long" in text
    assert session.turns[-1] == {"role": "assistant", "content": want}


def test_the_terminal_ends_at_the_end_of_input():
    def read(_):
        raise EOFError

    assert (
        run_terminal(ChatSession(DummyModel(), GenerationOptions()), read=read, out=io.StringIO())
        == 0
    )
