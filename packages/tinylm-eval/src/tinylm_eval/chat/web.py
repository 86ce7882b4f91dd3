"""The chat page: a gradio `ChatInterface` over the same conversation core as the terminal
(needs the `web` extra: `pip install tinylm-eval[web]`)."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator

from tinylm_eval.chat.session import reply
from tinylm_eval.models.base import GenerationOptions, LanguageModel

logger = logging.getLogger(__name__)


def _text(content) -> str:
    """A gradio message's content as text (a string, or a list of text parts)."""
    if isinstance(content, str):
        return content
    if isinstance(content, dict):
        return str(content.get("text", ""))
    if isinstance(content, list):
        return "".join(_text(part) for part in content)
    return ""


def build_page(
    model: LanguageModel,
    options: GenerationOptions,
    *,
    system: str | None = None,
    title: str = "TinyLM chat",
):
    """The gradio page: each message is answered from the page's history through `reply`, the
    answer so far shown as it grows."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # why: no calls home from a page
    try:
        import gradio as gr
    except ImportError as error:
        raise RuntimeError(
            "the chat page needs gradio: install the web extra (tinylm-eval[web])"
        ) from error

    head = [{"role": "system", "content": system}] if system else []

    def respond(message: str, history: list[dict]) -> Iterator[str]:
        turns = [{"role": m["role"], "content": _text(m["content"])} for m in history]
        _, pieces = reply(model, head + turns + [{"role": "user", "content": message}], options)
        text = ""
        for piece in pieces:
            text += piece
            yield text

    return gr.ChatInterface(
        respond, title=title, api_name="chat", flagging_mode="never", analytics_enabled=False
    )


def serve(page, *, host: str, port: int | None, block: bool = True):
    """Serves `page` on host:port (None: gradio picks a free one); the page's URL."""
    _, url, _ = page.launch(
        server_name=host, server_port=port, prevent_thread_lock=True, quiet=True
    )
    logger.info("chat page on %s", url)
    if block:
        page.block_thread()
    return url
