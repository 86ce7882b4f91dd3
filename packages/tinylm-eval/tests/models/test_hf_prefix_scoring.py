import os

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from tinylm_eval.data import LETTERS, SAMPLE_DIR
from tinylm_eval.models.hf_prefix_scoring import score_letters_with_prefix
from tinylm_eval.models.hf_scoring import answer_token_ids, score_letters
from tinylm_eval.prompts import choose_shots
from tinylm_eval.tasks import get_task

torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))


@pytest.fixture(scope="module")
def subject_prompts(tiny_model_dir):
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    task, root, subject = get_task("mmlu"), SAMPLE_DIR / "mmlu", "high_school_geography"
    fmt = task.prompt_format
    shots = choose_shots(task.layout.read(root, "dev", subject), 3, None)
    header = fmt.header.format(subject=fmt.subject_title(subject))
    prefix = tokenizer.encode(
        header + "".join(map(fmt.render_exemplar, shots)), add_special_tokens=False
    )
    questions = [
        tokenizer.encode(fmt.render_question(q), add_special_tokens=False)
        for q in task.layout.read(root, "test", subject)
    ]
    letters = answer_token_ids(tokenizer, [fmt.answer_text(letter) for letter in LETTERS])
    return tokenizer, prefix, questions, letters


@pytest.mark.parametrize("batch_size", [1, 4])
def test_cached_prefix_scores_equal_full_prompt_scores(tiny_model_dir, subject_prompts, batch_size):
    tokenizer, prefix, questions, letters = subject_prompts
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval()
    full = score_letters(model, tokenizer, [prefix + q for q in questions], letters, batch_size=1)
    cached = score_letters_with_prefix(model, tokenizer, prefix, questions, letters, batch_size)
    assert len(cached) == len(questions) == 10
    assert torch.allclose(torch.tensor(cached), torch.tensor(full), atol=1e-4)
    # the rows differ, so a misread answer position would not go unnoticed
    assert len({tuple(round(x, 4) for x in row) for row in cached}) > 1


def test_empty_question_is_refused(tiny_model_dir, subject_prompts):
    tokenizer, prefix, _, letters = subject_prompts
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval()
    with pytest.raises(ValueError, match="tokenizes to nothing"):
        score_letters_with_prefix(model, tokenizer, prefix, [[5], []], letters, 2)


def test_answer_rows_of_the_output_projection_equal_the_full_logits(
    tiny_model_dir, subject_prompts
):
    """Letter scores come from the four answer rows of lm_head; they equal the full logits' columns."""
    tokenizer, prefix, questions, letters = subject_prompts
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval()
    prompts = [prefix + q for q in questions[:3]]
    got = score_letters(model, tokenizer, prompts, letters, batch_size=3)
    with torch.inference_mode():
        want = [model(input_ids=torch.tensor([p])).logits[0, -1, letters].tolist() for p in prompts]
    assert torch.allclose(torch.tensor(got), torch.tensor(want), atol=1e-5)
