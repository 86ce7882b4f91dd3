"""Chat on a tiny Qwen2 trained to know a few answers: the template and stop rules of the model
directory, streaming equal to batch generation, and the `chat` command in the terminal."""

import json
import shutil
import threading

import pytest
import torch
from chat_test_helpers import ANSWERS, CHATML, RUNS_ON, save_chat_model
from typer.testing import CliRunner

from tinylm_eval.chat import ChatSession, fit_history
from tinylm_eval.cli import app
from tinylm_eval.models import GenerationOptions
from tinylm_eval.models.hf import HFModel

pytestmark = pytest.mark.slow  # the module's model is trained first (seconds)

runner = CliRunner()
GREEDY = GenerationOptions(max_new_tokens=30)
SAMPLED = GenerationOptions(max_new_tokens=16, temperature=1.0, top_k=40, top_p=0.95, seed=7)


@pytest.fixture(scope="module")
def model(chat_model_dir):
    return HFModel.load(chat_model_dir)


def ask(model, question: str, options: GenerationOptions) -> str:
    return "".join(ChatSession(model, options).ask(question))


def test_greedy_answers_are_the_trained_ones_ended_by_the_template(model):
    assert {q: ask(model, q, GREEDY) for q in ANSWERS} == ANSWERS
    # trained to run on into a stray "Human:" turn: cut at the generation config's stop string
    assert model.stop_strings == ("\nHuman:",)
    assert ask(model, RUNS_ON[0], GREEDY) == RUNS_ON[1]


def test_the_stopping_rules_are_the_model_directorys(chat_model_dir, tmp_path):
    bare = tmp_path / "no-stop-rules"
    shutil.copytree(chat_model_dir, bare)
    config = json.loads((bare / "generation_config.json").read_text())
    del config["eos_token_id"], config["stop_strings"]
    (bare / "generation_config.json").write_text(json.dumps(config))
    (bare / "config.json").write_text(
        json.dumps({**json.loads((bare / "config.json").read_text()), "eos_token_id": None})
    )
    loose = HFModel.load(bare)
    assert loose.stop_strings == ()
    ran_on = ask(loose, RUNS_ON[0], GREEDY)
    assert ran_on.startswith(RUNS_ON[1] + "\nHuman:")
    assert ask(loose, "What is the capital of France?", GREEDY) != "Paris."


def without_end_of_turn(model_dir, tmp_path, token_id: int):
    """A copy of `model_dir` whose generation config no longer ends at `token_id`."""
    copy = tmp_path / f"{model_dir.name}-loose"
    shutil.copytree(model_dir, copy)
    config = json.loads((copy / "generation_config.json").read_text())
    config["eos_token_id"] = [i for i in config["eos_token_id"] if i != token_id]
    (copy / "generation_config.json").write_text(json.dumps(config))
    return copy


def test_chatml_answers_end_at_im_end(tmp_path_factory, tmp_path):
    chatml = save_chat_model(tmp_path_factory.mktemp("chatml"), CHATML)
    model = HFModel.load(chatml)
    assert model.stop_strings == () and "<|im_start|>assistant\n" in model.chat_prompt(
        [{"role": "user", "content": "hi"}]
    )
    assert {q: ask(model, q, GREEDY) for q in ANSWERS} == ANSWERS
    assert ask(model, RUNS_ON[0], GREEDY) == RUNS_ON[1]
    im_end = model.tokenizer.convert_tokens_to_ids("<|im_end|>")
    loose = HFModel.load(without_end_of_turn(chatml, tmp_path, im_end))
    assert ask(loose, RUNS_ON[0], GREEDY).startswith(RUNS_ON[1] + "\nuser\nagain")


def test_streamed_pieces_join_to_what_generate_gives(model):
    for options in (GREEDY, SAMPLED):
        for question in [*ANSWERS, RUNS_ON[0]]:
            prompt = model.chat_prompt([{"role": "user", "content": question}])
            pieces = list(model.stream(prompt, options))
            assert "".join(pieces) == model.generate([prompt], options)[0]
    prompt = model.chat_prompt([{"role": "user", "content": "How many legs does a cat have?"}])
    assert len(list(model.stream(prompt, GREEDY))) > 1


def test_sampling_follows_the_seed_and_keeps_the_callers_random_state(model):
    question = "What is the capital of France?"
    before = torch.random.get_rng_state()
    answers = {
        seed: ask(model, question, GenerationOptions(max_new_tokens=16, temperature=1.5, seed=seed))
        for seed in (1, 1, 2, 3)
    }
    assert torch.equal(before, torch.random.get_rng_state())
    assert len(set(answers.values())) > 1
    again = ask(model, question, GenerationOptions(max_new_tokens=16, temperature=1.5, seed=1))
    assert again == answers[1]


def test_top_k_and_the_repetition_penalty_reach_the_sampler(model):
    question = "How many legs does a cat have?"
    # top-k 1 leaves only the likeliest token: any temperature and seed give the greedy answer
    for seed in (0, 1):
        only_best = GenerationOptions(max_new_tokens=30, temperature=2.0, top_k=1, seed=seed)
        assert ask(model, question, only_best) == ANSWERS[question]
    # the answer repeats "cat" and "legs" from the question: a heavy penalty changes it
    penalised = GenerationOptions(max_new_tokens=30, repetition_penalty=50.0)
    assert ask(model, question, penalised) != ANSWERS[question]


def test_closing_a_stream_early_ends_its_generation(model):
    prompt = model.chat_prompt([{"role": "user", "content": "Say hello."}])
    threads = threading.active_count()
    stream = model.stream(prompt, GenerationOptions(max_new_tokens=200, temperature=1.0, seed=0))
    next(stream)
    stream.close()
    assert threading.active_count() == threads


def test_a_long_conversation_loses_its_oldest_turns_to_fit(model):
    filler = "the following are multiple choice questions about geography " * 4
    messages = []
    for i in range(6):
        messages += [
            {"role": "user", "content": f"{i} {filler}"},
            {"role": "assistant", "content": filler},
        ]
    messages.append({"role": "user", "content": "What is the capital of France?"})
    assert len(model.encode(model.chat_prompt(messages))) > model.context_length
    kept, prompt = fit_history(model, messages, answer_tokens=30)
    assert (
        kept == messages[-len(kept) :] and kept[0]["role"] == "user" and len(kept) < len(messages)
    )
    assert len(model.encode(prompt)) + 30 <= model.context_length
    assert (
        len(model.encode(model.chat_prompt(messages[-len(kept) - 2 :]))) + 30 > model.context_length
    )


def chat(model_dir, *args: str, input: str | None = None):
    """`tinylm-eval chat --model DIR ARGS...`, greedy, 30 answer tokens, on the CPU."""
    common = ["--temperature", "0", "--max-new-tokens", "30", "--device", "cpu"]
    return runner.invoke(app, ["chat", "--model", str(model_dir), *common, *args], input=input)


def test_chat_prompt_answers_once(chat_model_dir):
    for question, want in ANSWERS.items():
        result = chat(chat_model_dir, "--prompt", question)
        assert result.exit_code == 0, result.output
        assert result.stdout == want + "\n"


def test_chat_in_the_terminal_keeps_a_conversation_and_resets(chat_model_dir):
    lines = ["What is the capital of France?", "/reset", "中国的首都是哪里？", "/exit"]
    result = chat(chat_model_dir, input="\n".join(lines) + "\n")
    assert result.exit_code == 0, result.output
    assert "model> Paris.\n" in result.stdout and "model> 北京。\n" in result.stdout
    assert "(conversation reset)" in result.stdout and "2 answers" in result.stderr


def test_chat_mistakes_are_reported_before_a_model_loads(chat_model_dir, tiny_model_dir, tmp_path):
    result = runner.invoke(
        app, ["chat", "--model", str(tmp_path / "absent"), "--max-new-tokens", "0"]
    )
    assert result.exit_code == 2 and "max_new_tokens must be >= 1" in result.output
    result = runner.invoke(app, ["chat", "--model", str(tmp_path / "absent"), "--top-p", "0"])
    assert result.exit_code == 2 and "top_p" in result.output
    result = runner.invoke(app, ["chat", "--model", str(chat_model_dir), "--web", "--prompt", "hi"])
    assert result.exit_code == 2 and "--web and --prompt" in result.output
    result = chat(tiny_model_dir, "--prompt", "hi")
    assert result.exit_code == 2 and "has no chat template" in " ".join(result.output.split())
