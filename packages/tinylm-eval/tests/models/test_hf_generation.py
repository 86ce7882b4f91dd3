"""HF generation on the tiny random Qwen2: greedy is the argmax path, batching and seeds are stable."""

import os

import pytest
import torch

from tinylm_eval.models import GenerationOptions
from tinylm_eval.models.hf import HFModel

torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))

PROMPTS = ["The following are multiple choice", "答案：A", "Answer: B Answer: C Answer:"]


@pytest.fixture(scope="module")
def model(tiny_model_dir):
    return HFModel.load(tiny_model_dir)


def argmax_continuation(model, prompt, steps):
    ids = model.encode(prompt)
    with torch.inference_mode():
        for _ in range(steps):
            logits = model.module(input_ids=torch.tensor([ids])).logits
            ids.append(int(logits[0, -1].argmax()))
    return ids[len(model.encode(prompt)) :]


def test_greedy_generation_is_the_argmax_path(model):
    texts = model.generate(PROMPTS[:1], GenerationOptions(max_new_tokens=8))
    want = model.tokenizer.decode(argmax_continuation(model, PROMPTS[0], 8))
    assert texts == [want] and len(model.encode(texts[0])) >= 1


def test_left_padded_batches_generate_what_single_prompts_do(model):
    options = GenerationOptions(max_new_tokens=6)
    batched = model.generate(PROMPTS, options)
    assert batched == [model.generate([p], options)[0] for p in PROMPTS]
    assert len(set(batched)) > 1


def test_stop_strings_cut_the_text(model):
    free = model.generate(PROMPTS[:1], GenerationOptions(max_new_tokens=12))[0]
    stop = free[3:5]  # text that the greedy continuation reaches
    cut = model.generate(PROMPTS[:1], GenerationOptions(max_new_tokens=12, stop=(stop,)))[0]
    assert cut == free[: free.find(stop)] and stop not in cut


def test_sampling_is_reproducible_by_seed(model):
    def sample(seed):
        options = GenerationOptions(max_new_tokens=10, temperature=1.5, seed=seed)
        return model.generate(PROMPTS, options)

    assert sample(1) == sample(1)
    assert sample(1) != sample(2)
    before = torch.random.get_rng_state()
    sample(3)
    assert torch.equal(before, torch.random.get_rng_state())  # the caller's random state is kept


def test_generation_options_are_checked():
    with pytest.raises(ValueError, match="max_new_tokens"):
        GenerationOptions(max_new_tokens=0)
    with pytest.raises(ValueError, match="stop string"):
        GenerationOptions(stop=("",))
    with pytest.raises(ValueError, match="top_p"):
        GenerationOptions(temperature=1.0, top_p=0)
