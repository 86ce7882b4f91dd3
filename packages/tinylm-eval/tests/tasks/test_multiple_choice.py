"""End-to-end multiple-choice scoring over the authored sample with stand-in modules and a tiny random
Qwen2 behind the HF model interface."""

import os

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from tinylm_eval.data import LETTERS, SAMPLE_DIR
from tinylm_eval.models.hf import HFModel
from tinylm_eval.models.hf_scoring import answer_token_ids
from tinylm_eval.tasks import ChoiceConfig, get_task, multiple_choice_tasks

torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))

BENCH = [("mmlu", "test"), ("ceval", "val"), ("cmmlu", "test")]


class StandIn(torch.nn.Module):
    """Reads each row's real tokens (attention mask), and puts a high logit on the token `choose` returns
    at the row's last real position only: reading any other position gives all-zero logits (→ "A")."""

    def __init__(self, tokenizer, vocab, choose):
        super().__init__()
        self.tokenizer, self.vocab, self.choose = tokenizer, vocab, choose
        self.anchor = torch.nn.Parameter(torch.zeros(1))

    def forward(self, input_ids, attention_mask):
        logits = torch.zeros(*input_ids.shape, self.vocab)
        for row, (ids, mask) in enumerate(zip(input_ids, attention_mask, strict=True)):
            last = int(mask.sum()) - 1
            text = self.tokenizer.decode(ids[: last + 1])
            logits[row, last, self.choose(text)] = 10.0
        return type("Out", (), {"logits": logits})


def gold_lookup(benchmark, split, fmt):
    gold = {}
    layout = get_task(benchmark).layout
    for subject in layout.subjects(SAMPLE_DIR / benchmark, split):
        for q in layout.read(SAMPLE_DIR / benchmark, split, subject):
            gold[get_task(fmt).prompt_format.render_question(q)] = q.answer
    return gold


@pytest.fixture(scope="module")
def tokenizer(tiny_model_dir):
    return AutoTokenizer.from_pretrained(tiny_model_dir)


@pytest.mark.parametrize(("benchmark", "split"), BENCH)
def test_oracle_scores_100_and_always_a_scores_the_share_of_a(tokenizer, benchmark, split):
    task = get_task(benchmark)
    fmt = task.prompt_format
    letter_ids = dict(
        zip(
            LETTERS, answer_token_ids(tokenizer, [fmt.answer_text(x) for x in LETTERS]), strict=True
        )
    )
    gold = gold_lookup(benchmark, split, benchmark)

    def oracle(text):
        return letter_ids[next(a for tail, a in gold.items() if text.endswith(tail))]

    config = ChoiceConfig(
        data_dir=SAMPLE_DIR / benchmark,
        split=split,
        batch_size=4,
        share_prefix=False,  # the stand-in reads whole prompts, it keeps no key/value cache
    )
    oracle_model = HFModel(StandIn(tokenizer, len(tokenizer), oracle), tokenizer)
    report, records = task.evaluate(oracle_model, config)
    assert report["scores"]["micro_accuracy"] == 1.0
    assert report["scores"]["questions"] == len(gold) == len(records)
    assert report["shots_used_histogram"] == {"3": len(gold)}

    always_a = HFModel(StandIn(tokenizer, len(tokenizer), lambda _: letter_ids["A"]), tokenizer)
    report, records = task.evaluate(always_a, config)
    share_a = sum(r["answer"] == "A" for r in records) / len(records)
    assert 0 < share_a < 1
    assert report["scores"]["micro_accuracy"] == pytest.approx(share_a)


def test_answer_token_spelling_matches_the_exemplars(tokenizer):
    """The scored token is the token that follows the cue inside a tokenized exemplar."""
    for name, fmt in ((n, t.prompt_format) for n, t in multiple_choice_tasks().items()):
        for letter in LETTERS:
            exemplar = tokenizer.encode(
                f"{fmt.cue}{fmt.answer_text(letter)}", add_special_tokens=False
            )
            assert exemplar[-1] == answer_token_ids(tokenizer, [fmt.answer_text(letter)])[0], name


def test_qwen_answer_tokens_differ_by_spelling(shared_data):
    qwen = AutoTokenizer.from_pretrained(shared_data / "qwen1.5-tokenizer")
    spaced = answer_token_ids(qwen, [" A", " B", " C", " D"])
    bare = answer_token_ids(qwen, list(LETTERS))
    assert not set(spaced) & set(bare)
    assert qwen.encode("Answer: A", add_special_tokens=False)[-1] == spaced[0]
    assert qwen.encode("答案：A", add_special_tokens=False)[-1] == bare[0]


@pytest.mark.parametrize("method", ["letter", "option"])
def test_batched_and_unbatched_predictions_are_identical(tiny_model_dir, tokenizer, method):
    model = HFModel(AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval(), tokenizer)
    runs = []
    for batch_size in (1, 7):
        config = ChoiceConfig(
            data_dir=SAMPLE_DIR / "mmlu",
            split="val",
            batch_size=batch_size,
            method=method,
            shots=2,
        )
        runs.append(get_task("mmlu").evaluate(model, config)[1])
    assert [r["prediction"] for r in runs[0]] == [r["prediction"] for r in runs[1]]
    for a, b in zip(*runs, strict=True):
        assert a["scores"] == pytest.approx(b["scores"], abs=1e-3)
