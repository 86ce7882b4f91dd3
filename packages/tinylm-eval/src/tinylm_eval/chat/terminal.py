"""The terminal chat: lines from the person, answers streamed as they are generated."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TextIO

from tinylm_eval.chat.session import ChatSession, HistoryError

COMMANDS = "/reset forgets the conversation, /exit (or an end of input) ends it"


def answer(session: ChatSession, text: str, out: TextIO) -> str:
    """Streams the answer to `text` onto `out` as it comes; the whole answer."""
    pieces = []
    for piece in session.ask(text):
        out.write(piece)
        out.flush()
        pieces.append(piece)
    out.write("\n")
    return "".join(pieces)


def run_terminal(
    session: ChatSession,
    *,
    read: Callable[[str], str] = input,
    out: TextIO | None = None,
) -> int:
    """Talks until `/exit` or the end of input; the number of answers given."""
    out = out or sys.stdout
    out.write(f"({COMMANDS})\n")
    answers = 0
    while True:
        try:
            line = read("you> ").strip()
        except EOFError:
            out.write("\n")
            return answers
        if line in ("/exit", "/quit"):
            return answers
        if line == "/reset":
            session.reset()
            out.write("(conversation reset)\n")
            continue
        if line.startswith("/"):
            out.write(f"(unknown command {line.split()[0]}: {COMMANDS})\n")
            continue
        if not line:
            continue
        out.write("model> ")
        try:
            answer(session, line, out)
        except HistoryError as error:
            out.write(f"\n(not answered: {error})\n")
            continue
        answers += 1
