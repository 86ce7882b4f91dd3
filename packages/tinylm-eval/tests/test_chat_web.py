"""`tinylm-eval chat --web` for real: the command serves its page on 127.0.0.1 (in a thread of
the test), gradio_client drives it, and its streamed answers are the terminal's for the seed."""

import importlib.util
import socket
import threading
import time

import pytest
from typer.testing import CliRunner

from tinylm_eval.cli import app

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("gradio") is None,
    reason="the web extra (tinylm-eval[web]) is not installed",
)

SAMPLING = ["--temperature", "1.0", "--top-k", "40", "--seed", "11", "--max-new-tokens", "24"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def page(chat_model_dir):
    import gradio

    port = free_port()
    args = ["chat", "--model", str(chat_model_dir), "--web", "--port", str(port), "--device", "cpu"]
    failures = []

    def serve():
        try:
            app([*args, *SAMPLING], standalone_mode=False)
        except BaseException as error:  # why: shown by the test, not lost in the thread
            failures.append(error)

    server = threading.Thread(target=serve, name="chat-page", daemon=True)
    server.start()
    for _ in range(1200):
        assert not failures, failures
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                break
        time.sleep(0.1)
    else:
        pytest.fail("the chat page did not come up")
    yield f"http://127.0.0.1:{port}/"
    gradio.close_all()  # the command's wait on its page ends
    server.join(timeout=30)
    assert not server.is_alive() and not failures, failures


def terminal(model_dir, *args, input=None):
    result = CliRunner().invoke(
        app, ["chat", "--model", str(model_dir), "--device", "cpu", *SAMPLING, *args], input=input
    )
    assert result.exit_code == 0, result.output
    return result.stdout


@pytest.mark.slow
def test_the_page_streams_the_terminals_answers(page, chat_model_dir):
    from gradio_client import Client

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
