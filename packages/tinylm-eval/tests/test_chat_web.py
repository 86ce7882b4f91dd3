"""`tinylm-eval chat --web` for real: the command serves the page on 127.0.0.1, gradio_client
drives it, and the streamed answer is the terminal's for the same seed."""

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tinylm_eval.cli import app

pytest.importorskip("gradio", reason="the web extra (tinylm-eval[web]) is not installed")

SAMPLING = ["--temperature", "1.0", "--top-k", "40", "--seed", "11", "--max-new-tokens", "24"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def page(chat_model_dir):
    port = free_port()
    command = [
        str(Path(sys.executable).parent / "tinylm-eval"),
        "chat",
        "--model",
        str(chat_model_dir),
    ]
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "OMP_NUM_THREADS": "1"}
    server = subprocess.Popen(
        [*command, "--web", "--port", str(port), "--device", "cpu", *SAMPLING],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}/"
    try:
        for _ in range(600):
            if server.poll() is not None:
                pytest.fail(f"the chat page exited: {server.stdout.read()}")
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.2)
        else:
            pytest.fail("the chat page did not come up")
        yield url
    finally:
        server.terminate()
        server.wait(timeout=30)


@pytest.mark.slow
def test_the_page_streams_the_terminals_answer(page, chat_model_dir):
    from gradio_client import Client

    client = Client(page, verbose=False)
    for question in ("What is the capital of France?", "Say hello."):
        job = client.submit(question, api_name="/chat")
        final = job.result(timeout=120)
        updates = [u for u in job.outputs() if u]
        terminal = CliRunner().invoke(
            app,
            [
                "chat",
                "--model",
                str(chat_model_dir),
                "--prompt",
                question,
                "--device",
                "cpu",
                *SAMPLING,
            ],
        )
        assert terminal.exit_code == 0, terminal.output
        assert final == terminal.stdout.removesuffix("\n") and final
        assert all(final.startswith(u) for u in updates) and updates[-1] == final
    assert len(updates) > 1  # the answer came in pieces
