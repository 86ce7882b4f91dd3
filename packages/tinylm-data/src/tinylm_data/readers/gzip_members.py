"""Multi-member gzip files (`cat a.gz b.gz`, bgzip, pigz --independent): where members start.

A gzip stream cannot be entered in the middle, but each member is a stream of its own, so a file
of many members can be read from any member start. Finding them means decompressing the file
once (planning does, for files larger than `split_bytes`); a member start is a usable cut only
where the text before it ends with a newline, so that no line spans two units.
"""

from __future__ import annotations

import gzip
import io
import zlib
from typing import BinaryIO

from .storage import InputPath, open_input


def member_cuts(path: InputPath, split_bytes: int, chunk: int = 1 << 22) -> list[tuple[int, int]]:
    """`(compressed offset, newlines before)` of member starts about `split_bytes` apart.

    Empty for a single-member file, or one that is not valid gzip (it is then read whole, and the
    reader reports what is wrong with it).
    """
    cuts: list[tuple[int, int]] = []
    newlines = 0
    ends_line = True
    next_cut = split_bytes
    offset = 0  # compressed offset of `block`
    decompressor = zlib.decompressobj(31)
    try:
        with open_input(path) as handle:
            block = handle.read(chunk)
            while block:
                text = decompressor.decompress(block)
                if text:
                    newlines += text.count(b"\n")
                    ends_line = text.endswith(b"\n")
                if not decompressor.eof:
                    offset += len(block)
                    block = handle.read(chunk)
                    continue
                rest = decompressor.unused_data
                member_end = offset + len(block) - len(rest)
                if not rest:
                    rest = handle.read(chunk)
                if not rest:
                    break  # the last member
                if rest.lstrip(b"\0") == b"" and not handle.read(1):
                    break  # zero padding after the last member, which gzip allows
                if member_end >= next_cut and ends_line:
                    cuts.append((member_end, newlines))
                    next_cut = member_end + split_bytes
                decompressor = zlib.decompressobj(31)
                offset, block = member_end, rest
            if not decompressor.eof:
                return []  # truncated: read whole, and rejected where it ends
    except (OSError, zlib.error, EOFError):
        return []
    return cuts


class _Slice(io.RawIOBase):
    """Bytes `[start, end)` of a seekable binary file, as a file of their own."""

    def __init__(self, handle: BinaryIO, start: int, end: int) -> None:
        handle.seek(start)
        self._handle, self._left = handle, end - start

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        if self._left <= 0:
            return 0
        data = self._handle.read(min(len(buffer), self._left))
        buffer[: len(data)] = data
        self._left -= len(data)
        return len(data)

    def close(self) -> None:
        self._handle.close()
        super().close()


def open_members(path: InputPath, start: int, end: int) -> BinaryIO:
    """The decompressed text of the members in compressed bytes `[start, end)`."""
    raw = io.BufferedReader(_Slice(open_input(path), start, end), 1 << 20)
    return _ClosingGzip(raw)


class _ClosingGzip(gzip.GzipFile):
    """A `GzipFile` that closes the file it reads (GzipFile leaves a passed file open)."""

    def __init__(self, raw: BinaryIO) -> None:
        super().__init__(fileobj=raw, mode="rb")
        self._raw = raw

    def close(self) -> None:
        try:
            super().close()
        finally:
            self._raw.close()
