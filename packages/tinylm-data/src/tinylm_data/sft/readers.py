"""SFT source formats in, `Conversation`s (or `Rejection`s with file, line and reason) out.

Kinds and the datasets they read:

- `alpaca`: records of instruction, input, output (Alpaca, BELLE 0.5M/1M, python-codes-25k,
  LongAlpaca; other field names through `fields`). The user turn is the instruction, then the
  input on the next line when there is one.
- `sharegpt`: `conversations` of `{from: human|user|gpt|assistant|system, value}` (ShareGPT,
  BELLE 3.5M).
- `messages`: `messages` of `{role: system|user|assistant, content}` (OpenAI style, LongAlign).

A file is a JSON list (`[{...}, {...}]`, as Alpaca ships) or JSON lines, told apart by its first
character; `.gz` is read transparently. Ids: `<source>/<native id>` when the record has an `id`,
else `<source>/<file>:<line>`.
"""

from __future__ import annotations

import gzip
import json
import zlib
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from ..document import Rejection
from ..readers import INVALID_UTF8, MALFORMED_JSON
from ..readers.formats import MISSING_TEXT, RecordError
from ..readers.lines import (
    DEFAULT_MAX_LINE_BYTES,
    TRUNCATED_GZIP,
    UNREADABLE_FILE,
    LineError,
    iter_lines,
    open_binary,
)
from .conversation import (
    ASSISTANT,
    NO_ASSISTANT,
    NON_STRING,
    SYSTEM,
    UNKNOWN_ROLE,
    USER,
    Conversation,
    content,
    from_messages,
)

ALPACA_FIELDS = {
    "instruction": "instruction",
    "input": "input",
    "output": "output",
    "system": "system",
}
SHAREGPT_ROLES = {
    "human": USER,
    "user": USER,
    "gpt": ASSISTANT,
    "assistant": ASSISTANT,
    "chatgpt": ASSISTANT,
    "bing": ASSISTANT,
    "system": SYSTEM,
}
MESSAGE_ROLES = {USER: USER, ASSISTANT: ASSISTANT, SYSTEM: SYSTEM}

SFT_KINDS = ("alpaca", "sharegpt", "messages")


def _alpaca(
    record: dict[str, Any], fields: Mapping[str, str]
) -> tuple[str | None, list[tuple[str, str]]]:
    names = {**ALPACA_FIELDS, **fields}
    instruction = content(record.get(names["instruction"]), f"{names['instruction']!r}")
    extra = record.get(names["input"])
    if extra is not None and not isinstance(extra, str):
        raise RecordError(NON_STRING, f"{names['input']!r} is {type(extra).__name__}, not a string")
    user = f"{instruction}\n{extra.strip()}" if extra and extra.strip() else instruction
    answer = record.get(names["output"])
    if answer is None or (isinstance(answer, str) and not answer.strip()):
        raise RecordError(NO_ASSISTANT, f"{names['output']!r} is missing or empty")
    assistant = content(answer, f"{names['output']!r}")
    system = record.get(names["system"])
    system = content(system, f"{names['system']!r}") if system not in (None, "") else None
    return system, [(user, assistant)]


def _turn_list(
    record: dict[str, Any], key: str, role_key: str, text_key: str, roles: Mapping[str, str]
):
    return from_messages(message_list(record, key, role_key, text_key, roles))


def message_list(
    record: dict[str, Any], key: str, role_key: str, text_key: str, roles: Mapping[str, str]
) -> list[tuple[str, str]]:
    """The (role, text) messages of `record[key]`, a list of {role_key, text_key} objects."""
    turns = record.get(key)
    if turns is None:
        raise RecordError(MISSING_TEXT, f"no {key!r} field")
    if not isinstance(turns, list):
        raise RecordError(NON_STRING, f"{key!r} is {type(turns).__name__}, not a list")
    messages = []
    for k, turn in enumerate(turns):
        if not isinstance(turn, dict):
            raise RecordError(NON_STRING, f"{key}[{k}] is {type(turn).__name__}, not an object")
        role = turn.get(role_key)
        if role not in roles:
            raise RecordError(UNKNOWN_ROLE, f"{key}[{k}].{role_key} is {role!r}")
        messages.append((roles[role], content(turn.get(text_key), f"{key}[{k}].{text_key}")))
    return messages


def _sharegpt(record, fields):
    return _turn_list(
        record, fields.get("conversations", "conversations"), "from", "value", SHAREGPT_ROLES
    )


def _messages(record, fields):
    return _turn_list(record, fields.get("messages", "messages"), "role", "content", MESSAGE_ROLES)


PARSERS = {"alpaca": _alpaca, "sharegpt": _sharegpt, "messages": _messages}


def _records(
    path: Path, max_line_bytes: int
) -> Iterator[tuple[int | None, Any] | tuple[str, str, int | None]]:
    """(line, record) per JSON value, or ("error", reason, line) for what cannot be parsed."""
    with open_binary(path) as handle:
        head = handle.read(4096).lstrip(b"\xef\xbb\xbf \t\r\n")
    if head.startswith(b"["):
        yield from _json_list(path)
        return
    for number, raw in iter_lines(path, max_line_bytes):
        if raw is None:
            yield ("error", "line_too_long", number)
            continue
        try:
            text = raw.decode("utf-8").lstrip("\ufeff")
        except UnicodeDecodeError:
            yield ("error", INVALID_UTF8, number)
            continue
        if not text.strip():
            continue
        try:
            yield number, json.loads(text)
        except json.JSONDecodeError as exc:
            yield ("error", f"{MALFORMED_JSON}:{exc}", number)


def _json_list(path: Path) -> Iterator[tuple[int | None, Any] | tuple[str, str, int | None]]:
    """The elements of a JSON array, each with the line it starts on (the file is read whole)."""
    with open_binary(path) as handle:
        data = handle.read()
    try:
        text = data.decode("utf-8").lstrip("\ufeff")
    except UnicodeDecodeError as exc:
        yield ("error", INVALID_UTF8, data[: exc.start].count(b"\n") + 1)
        return
    decoder = json.JSONDecoder()
    pos = text.index("[") + 1
    line, counted = 1, 0
    while True:
        while pos < len(text) and text[pos] in " \t\r\n,":
            pos += 1
        if pos >= len(text):
            yield ("error", f"{MALFORMED_JSON}:the list is not closed", None)
            return
        if text[pos] == "]":
            return
        line += text.count("\n", counted, pos)
        counted = pos
        try:
            value, end = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as exc:
            yield ("error", f"{MALFORMED_JSON}:{exc.msg}", exc.lineno)
            return  # the rest of the list cannot be found reliably
        yield line, value
        pos = end


def read_conversations(
    kind: str,
    path: Path,
    *,
    source: str,
    display_path: str | None = None,
    fields: Mapping[str, str] | None = None,
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
) -> Iterator[Conversation | Rejection]:
    """The conversations of one file in order; a bad record is a `Rejection(stage="read")`."""
    if kind not in PARSERS:
        raise ValueError(f"unknown SFT reader {kind!r}; choose one of {', '.join(SFT_KINDS)}")
    parse = PARSERS[kind]
    for item in read_parsed(
        parse,
        path,
        source=source,
        display_path=display_path,
        fields=fields,
        max_line_bytes=max_line_bytes,
    ):
        if isinstance(item, Rejection):
            yield item
            continue
        doc_id, display, line, (system, turns) = item
        yield Conversation(doc_id, source, turns, system, display, line)


def read_parsed(
    parse: Callable[[dict[str, Any], Mapping[str, str]], Any],
    path: Path,
    *,
    source: str,
    display_path: str | None = None,
    fields: Mapping[str, str] | None = None,
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
) -> Iterator[tuple[str, str, int | None, Any] | Rejection]:
    """(id, file, line, parse(record)) per record of one file, or a `Rejection(stage="read")`
    with file, line and reason for what cannot be read or parsed (`parse` raises RecordError)."""
    fields = dict(fields or {})
    display = display_path or Path(path).name

    def reject(reason: str, line: int | None, detail: str = "") -> Rejection:
        return Rejection(source, "read", reason, detail, file=display, line=line)

    try:
        for item in _records(Path(path), max_line_bytes):
            if item[0] == "error":
                reason, _, detail = item[1].partition(":")
                yield reject(reason, item[2], detail)
                continue
            line, record = item
            if not isinstance(record, dict):
                yield reject(MALFORMED_JSON, line, f"a JSON {type(record).__name__}, not an object")
                continue
            try:
                parsed = parse(record, fields)
            except RecordError as exc:
                rid = record.get("id")
                yield Rejection(
                    source,
                    "read",
                    exc.reason,
                    exc.detail,
                    doc_id=None if rid is None else f"{source}/{rid}",
                    file=display,
                    line=line,
                )
                continue
            native = record.get("id")
            doc_id = (
                f"{source}/{native}"
                if isinstance(native, str | int) and not isinstance(native, bool)
                else f"{source}/{display}:{line}"
            )
            yield doc_id, display, line, parsed
    except LineError as exc:
        yield reject(exc.reason, exc.line, exc.detail)
    except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
        yield reject(TRUNCATED_GZIP, None, f"compressed stream ends early: {exc}")
    except OSError as exc:
        yield reject(UNREADABLE_FILE, None, f"{type(exc).__name__}: {exc}")
