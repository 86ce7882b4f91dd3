"""The chat page for real: served on 127.0.0.1 by the functions `chat --web` calls, driven with
gradio_client; its streamed answers are the terminal's for the same seed."""

import importlib.util
import socket

import pytest
from typer.testing import CliRunner

from tinylm_eval.cli import app
from tinylm_eval.models import GenerationOptions

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("gradio") is None,
    reason="the web extra (tinylm-eval[web]) is not installed",
)

SEED = 11
SAMPLING = ["--temperature", "1.0", "--top-k", "40", "--seed", str(SEED), "--max-new-tokens", "24"]
OPTIONS = GenerationOptions(
    temperature=1.0, top_k=40, top_p=0.9, repetition_penalty=1.1, seed=SEED, max_new_tokens=24
)  # the chat command's defaults, and SAMPLING


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def page(chat_model_dir):
    from tinylm_eval.chat.web import build_page, serve
    from tinylm_eval.models.hf import HFModel

    page = build_page(HFModel.load(chat_model_dir), OPTIONS)
    url = serve(page, host="127.0.0.1", port=free_port(), block=False)
    yield url
    page.close()


def terminal(model_dir, *args, input=None):
    result = CliRunner().invoke(
        app, ["chat", "--model", str(model_dir), "--device", "cpu", *SAMPLING, *args], input=input
    )
    assert result.exit_code == 0, result.output
    return result.stdout


@pytest.mark.slow
def test_the_page_streams_the_terminals_answers(page, chat_model_dir):
    from gradio_client import Client

    assert page.startswith("http://127.0.0.1:")
    questions = ["How many legs does a cat have?", "Say hello."]
    said = terminal(chat_model_dir, input="\n".join(questions) + "\n").splitlines()
    answers = [line.split("model> ", 1)[1] for line in said if "model> " in line]
    assert len(answers) == 2 and all(answers)

    client = Client(page, verbose=False)  # one page session: the second question sees the first
    streamed = []
    for question, answer in zip(questions, answers, strict=True):
        job = client.submit(question, api_name="/chat")
        final = job.result(timeout=120)
        updates = [u for u in job.outputs() if u]
        assert final == answer
        assert all(final.startswith(u) for u in updates) and updates[-1] == final
        streamed.append(len(updates))
    assert streamed[0] > 1  # the answer came in pieces

    fresh = Client(page, verbose=False).submit(questions[1], api_name="/chat")
    assert fresh.result(timeout=120) == terminal(chat_model_dir, "--prompt", questions[1])[:-1]
