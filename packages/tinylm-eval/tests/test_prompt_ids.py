"""Prompt ids joined from pieces tokenized once per subject equal the ids of the whole prompt text."""

import pytest

from tinylm_eval._prompt_ids import _joined_ids, subject_prompt_ids
from tinylm_eval.data import SAMPLE_DIR
from tinylm_eval.prompts import build_prompt, choose_shots
from tinylm_eval.tasks import get_task

BENCH = [("mmlu", "test"), ("ceval", "val"), ("cmmlu", "test")]


def whole_text_ids(encode, fmt, shots, questions, max_length):
    """The reference: tokenize the whole prompt text for every shot count tried."""
    out = []
    for question in questions:
        built = build_prompt(fmt, question, shots, lambda t: len(encode(t)), max_length)
        out.append((encode(built.text)[-max_length:], built.shots_used, built.truncated))
    return out


def check(tokenizer, benchmark, root, split, subjects, max_length, encode=None):
    joins = encode is None  # byte-level BPE: the pieces join up, no whole-text fallback
    encode = encode or (lambda text: tokenizer.encode(text, add_special_tokens=False))
    fmt = get_task(benchmark).prompt_format
    checked = 0
    for subject in subjects:
        shots = choose_shots(get_task(benchmark).layout.read(root, "dev", subject), 5, None)
        questions = get_task(benchmark).layout.read(root, split, subject)
        got = subject_prompt_ids(encode, fmt, subject, shots, questions, max_length)
        want = whole_text_ids(encode, fmt, shots, questions, max_length)
        assert [(p.ids, p.shots_used, p.truncated) for p in got] == want, subject
        joined = _joined_ids(encode, fmt, subject, shots, questions, max_length)
        assert (joined is not None) == joins, subject
        checked += len(questions)
    return checked


@pytest.fixture(scope="module")
def tokenizer(tiny_model_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_model_dir)


@pytest.mark.parametrize(("benchmark", "split"), BENCH)
@pytest.mark.parametrize("max_length", [2048, 260, 120, 20])
def test_joined_ids_equal_whole_text_ids_with_shots_dropped(
    tokenizer, benchmark, split, max_length
):
    root = SAMPLE_DIR / benchmark
    assert check(
        tokenizer,
        benchmark,
        root,
        split,
        get_task(benchmark).layout.subjects(root, split),
        max_length,
    )


def test_pieces_that_do_not_join_fall_back_to_whole_text(tokenizer):
    """A tokenizer that marks the start of every text (as SentencePiece does) cannot join pieces."""

    def marked(text):
        return [0, *tokenizer.encode(text, add_special_tokens=False)]

    root = SAMPLE_DIR / "mmlu"
    assert check(
        tokenizer,
        "mmlu",
        root,
        "test",
        get_task("mmlu").layout.subjects(root, "test"),
        2048,
        marked,
    )


@pytest.mark.slow  # tokenizes whole real subjects with the Qwen tokenizer
@pytest.mark.shared
@pytest.mark.parametrize(
    ("benchmark", "split", "subjects"),
    [
        ("mmlu", "test", ["high_school_geography", "college_mathematics", "professional_law"]),
        ("ceval", "val", ["computer_network", "law", "high_school_chinese"]),
        ("cmmlu", "test", ["agronomy", "ancient_chinese", "college_mathematics"]),
    ],
)
def test_qwen_joined_ids_equal_whole_text_ids_on_real_data(shared_data, benchmark, split, subjects):
    from transformers import AutoTokenizer

    qwen = AutoTokenizer.from_pretrained(shared_data / "qwen1.5-tokenizer")
    assert check(qwen, benchmark, shared_data / benchmark, split, subjects, 2048)
