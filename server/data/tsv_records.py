"""Streaming, hashing, bounded-memory reader of tab-separated records.

The file is read through a raw reader that feeds every byte to sha256 hashers as it goes.
Physical lines are read as bytes with a length limit; a longer line is skipped (drained)
and stands as one :class:`Malformed` record, so memory stays bounded by the limit.

Records: a line without a double quote is split on tabs directly (the fast path: base64
image fields never contain quotes, so almost every GMAI-MMBench row takes it; the big
image field stays ``bytes``). A line with a quote goes to :mod:`csv` (quotechar ``"``,
doubled quotes, quoted fields spanning lines), decoded as UTF-8 with
``surrogateescape`` so invalid bytes surface as lone surrogates in that field instead of
stopping the read. Line ends are ``\\n`` or ``\\r\\n``.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, BinaryIO

READ_BUFFER = 1024 * 1024
"""Read size from disk."""

OVERSIZED_MARK = "\ufdd0gmai-eval: oversized line\ufdd0"
"""Stands in, for the csv parser, for a physical line longer than the limit."""

Field = str | bytes
"""A field: ``bytes`` from the fast path (decode before use), ``str`` from csv."""


@dataclass(frozen=True)
class Malformed:
    """A record that could not be split into fields."""

    message: str
    """Why."""


class HashingReader(io.RawIOBase):
    """A raw binary reader that feeds every byte it returns to some hashers."""

    def __init__(self, f: BinaryIO, hashers: Sequence[Any]) -> None:
        super().__init__()
        self._f = f
        self._hashers = hashers
        self.bytes_read = 0
        """Bytes read (and hashed) so far."""

    def readable(self) -> bool:
        """Always True."""
        return True

    def readinto(self, b: Any) -> int:
        """Read into ``b`` and hash what was read."""
        n = self._f.readinto(b)  # type: ignore[attr-defined]
        if n:
            view = memoryview(b)[:n]
            for h in self._hashers:
                h.update(view)
            self.bytes_read += n
        return n or 0

    def drain(self) -> None:
        """Read (and hash) the rest of the file."""
        buf = bytearray(READ_BUFFER)
        while self.readinto(buf):
            pass


def _ensure_csv_limit(limit: int) -> None:
    if csv.field_size_limit() < limit:
        csv.field_size_limit(limit)


class _Lines:
    """Physical byte lines with push-back; an over-long line becomes a marker line."""

    def __init__(self, buf: io.BufferedReader, limit: int) -> None:
        self._buf = buf
        self._limit = limit
        self.pending: bytes | None = None

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> bytes:
        if self.pending is not None:
            line, self.pending = self.pending, None
            return line
        line = self._buf.readline(self._limit)
        if not line:
            raise StopIteration
        if len(line) >= self._limit and not line.endswith(b"\n"):
            while True:
                more = self._buf.readline(self._limit)
                if not more or more.endswith(b"\n"):
                    break
            return OVERSIZED_MARK.encode("utf-8") + b"\n"
        return line


def split_tabs(line: bytes, end: int) -> list[Field]:
    """Split ``line[:end]`` on tabs.

    ``bytes.find`` scans with ``memchr``, several times faster than ``bytes.split`` on a
    single byte, which checks byte by byte: on a 270 KB row (the base64 image field) this
    takes 10-20 us instead of 70-80, and copies each field once without first copying the
    line without its line end.
    """
    fields: list[Field] = []
    start = 0
    find = line.find
    while (tab := find(b"\t", start, end)) >= 0:
        fields.append(line[start:tab])
        start = tab + 1
    fields.append(line[start:end])
    return fields


def read_records(buf: io.BufferedReader, limit: int) -> Iterator[list[Field] | Malformed]:
    """Yield the records of a tab-separated stream (blank lines skipped).

    Args:
        buf: the binary stream.
        limit: longest physical line accepted, in bytes.
    """
    _ensure_csv_limit(limit + 1)
    lines = _Lines(buf, limit)
    reader = csv.reader(
        (line.decode("utf-8", "surrogateescape") for line in lines), delimiter="\t", quotechar='"', strict=False
    )
    mark = OVERSIZED_MARK.encode("utf-8")
    for line in lines:
        if line.startswith(mark):
            yield Malformed(f"line longer than {limit} bytes")
            continue
        if b'"' not in line:
            end = len(line) - (2 if line.endswith(b"\r\n") else 1 if line.endswith(b"\n") else 0)
            if end:
                yield split_tabs(line, end)
            continue
        lines.pending = line
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield Malformed(str(exc))
            continue
        if any(OVERSIZED_MARK in f for f in fields):
            yield Malformed(f"line longer than {limit} bytes")
        elif fields:
            yield list(fields)
