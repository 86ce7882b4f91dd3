"""Raw lines of a text or JSON-lines file (gzip by suffix), with every failure turned into a reason."""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Iterator
from typing import BinaryIO

from .storage import InputPath, input_name, open_input

TRUNCATED_GZIP = "truncated_gzip"
UNREADABLE_FILE = "unreadable_file"
LINE_TOO_LONG = "line_too_long"

DEFAULT_MAX_LINE_BYTES = 64 << 20


class LineError(Exception):
    """A failure reading lines; `reason` is the reject code, `line` where it happened."""

    def __init__(self, reason: str, line: int | None, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.line = line
        self.detail = detail


def open_binary(path: InputPath) -> BinaryIO:
    if input_name(path).endswith(".gz"):
        if isinstance(path, str):  # a URL: fsspec closes both layers with the outer one
            import fsspec

            return fsspec.open(path, "rb", compression="gzip").open()
        return gzip.open(path, "rb")  # type: ignore[return-value]
    return open_input(path)


def iter_lines(
    path: InputPath,
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
    *,
    byte_range: tuple[int, int, int] | None = None,
    members: tuple[int, int, int] | None = None,
) -> Iterator[tuple[int, bytes | None]]:
    """Yields `(line_number, raw_line)` (1-based, line ending removed).

    A line longer than `max_line_bytes` is yielded as `(n, None)` after being skipped without
    holding it in memory. Errors that end the file raise `LineError` (the lines before it were
    already yielded). `byte_range` `(start, end, newlines before start)` reads only the lines
    that start in `[start, end)` of an uncompressed file, numbered as in the whole file;
    `members` `(start, end, newlines before start)` reads the gzip members in compressed bytes
    `[start, end)` (which start and end with whole lines: `gzip_members`).
    """
    try:
        if members is not None:
            from .gzip_members import open_members

            handle = open_members(path, members[0], members[1])
        else:
            handle = open_binary(path)
    except OSError as exc:
        raise LineError(
            UNREADABLE_FILE, None, f"{type(exc).__name__}: {exc.strerror or exc}"
        ) from None
    number = members[2] if members is not None else 0
    end = None
    with handle:
        try:
            if byte_range is not None:
                start, end, number = byte_range
                if start > 0:
                    handle.seek(start - 1)
                    if handle.read(1) != b"\n":  # a line that started before: not ours
                        number += 1
                        _skip_line(handle)
            while end is None or handle.tell() < end:
                raw = handle.readline(max_line_bytes + 1)
                if not raw:
                    return
                number += 1
                if len(raw) > max_line_bytes and not raw.endswith(b"\n"):
                    _skip_line(handle)
                    yield number, None
                    continue
                yield number, raw.rstrip(b"\r\n")
        except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
            raise LineError(
                TRUNCATED_GZIP, number + 1, f"compressed stream ends early: {exc}"
            ) from None
        except OSError as exc:
            raise LineError(UNREADABLE_FILE, number + 1, f"{type(exc).__name__}: {exc}") from None


def _skip_line(handle: BinaryIO) -> None:
    """Reads to just past the next newline (or the end), never holding a long line in memory."""
    while (raw := handle.readline(1 << 20)) and not raw.endswith(b"\n"):
        pass
