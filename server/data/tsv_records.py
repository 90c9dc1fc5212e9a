"""Streaming, hashing, bounded-memory reader of tab-separated records.

The file is read in large chunks into one reused buffer (:class:`LineReader`) and every
byte is fed to sha256 hashers as it is read, on a worker thread while the rows of the
chunk are parsed (``hashlib`` releases the GIL on large updates); the buffer is not
written again before that chunk's hash is done. Physical lines are found in that buffer with
a length limit; a longer line is skipped (drained) and stands as one :class:`Malformed`
record, so memory stays bounded by the limit.

Records: a line without a double quote is split on tabs directly in the read buffer (the
fast path: base64 image fields never contain quotes, so almost every GMAI-MMBench row
takes it; each field, the big image field included, is copied once, into ``bytes``).
A line with a quote goes to :mod:`csv` (quotechar ``"``,
doubled quotes, quoted fields spanning lines), decoded as UTF-8 with
``surrogateescape`` so invalid bytes surface as lone surrogates in that field instead of
stopping the read. Line ends are ``\\n`` or ``\\r\\n``.
"""

from __future__ import annotations

import concurrent.futures
import csv
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, BinaryIO

READ_BUFFER = 8 * 1024 * 1024
"""Size of the read buffer, and of each read from disk while a line fits in it."""

OVERSIZED_MARK = "\ufdd0gmai-eval: oversized line\ufdd0"
"""Stands in, for the csv parser, for a physical line longer than the limit."""

Field = str | bytes
"""A field: ``bytes`` from the fast path (decode before use), ``str`` from csv."""

_OVERSIZED = (-1, -1)
"""What :meth:`LineReader.next_span` returns for a line longer than the limit."""


@dataclass(frozen=True)
class Malformed:
    """A record that could not be split into fields."""

    message: str
    """Why."""


class LineReader:
    """Physical lines of a binary file, hashed as they are read, with a length limit.

    The file is read with ``readinto`` into one buffer that is reused (and grown only for
    a line longer than it, up to the limit), and every byte read is fed to the hashers
    once, in order, on a worker thread (one chunk in flight: the buffer is moved or
    read into only after the previous chunk is hashed). :meth:`drain` waits for the last
    chunk; :meth:`close` ends the worker. :meth:`next_span` hands out the next line as a span of that buffer, without
    copying it; iterating yields each line as ``bytes`` (for the csv parser) and takes
    a pushed-back :attr:`pending` line first. A line longer than ``limit`` bytes is read
    and hashed but not kept, so memory stays bounded by the limit.

    Args:
        f: the file, opened unbuffered (``buffering=0``).
        hashers: objects with ``update(bytes-like)`` (``hashlib`` hashes).
        limit: longest line accepted, in bytes, line end included.
        size: initial buffer size.
    """

    def __init__(self, f: BinaryIO, hashers: Sequence[Any], limit: int, size: int = READ_BUFFER) -> None:
        self._f = f
        self._hashers = hashers
        self.limit = limit
        """Longest line accepted, in bytes."""
        self.buffer = bytearray(size)
        """The read buffer; a span from :meth:`next_span` is valid until the next call."""
        self._start = 0
        self._end = 0
        self._eof = False
        self.pending: bytes | None = None
        """A line pushed back, returned first by ``next()``."""
        self.bytes_read = 0
        """Bytes read (and handed to the hashers) so far."""
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="gmai-hash")
        self._hashing: concurrent.futures.Future[None] | None = None

    def _hash(self, chunk: memoryview) -> None:
        with chunk:
            for h in self._hashers:
                h.update(chunk)

    def _wait(self) -> None:
        """Wait until the chunk in flight is hashed (before the buffer is written again)."""
        if self._hashing is not None:
            hashing, self._hashing = self._hashing, None
            hashing.result()

    def _read(self, view: memoryview) -> int:
        self._wait()
        n = self._f.readinto(view) or 0  # type: ignore[attr-defined]
        if n:
            self._hashing = self._pool.submit(self._hash, view[:n])
            self.bytes_read += n
        else:
            self._eof = True
        return n

    def _fill(self) -> bool:
        """Move the partial line to the front, grow the buffer if it is full, read more."""
        self._wait()
        kept = self._end - self._start
        if kept == len(self.buffer):
            grown = bytearray(min(2 * len(self.buffer), self.limit + 1))
            grown[:kept] = self.buffer
            self.buffer = grown
        elif self._start:
            with memoryview(self.buffer) as view:
                view[:kept] = view[self._start : self._end]  # memmove: the ranges may overlap
        self._start, self._end = 0, kept
        with memoryview(self.buffer) as view:
            n = self._read(view[kept:])
        self._end += n
        return n > 0

    def _skip_line(self) -> None:
        """Read (and hash) up to the end of the current line, keeping none of it."""
        self._start = self._end = 0
        with memoryview(self.buffer) as view:
            while n := self._read(view):
                nl = self.buffer.find(b"\n", 0, n)
                if nl >= 0:
                    self._start, self._end = nl + 1, n
                    return

    def next_span(self) -> tuple[int, int] | None:
        """``(start, end)`` of the next line in :attr:`buffer`, line end included; None at the end.

        A line longer than the limit gives ``(-1, -1)``. The span, and the buffer object
        itself, are valid until the next call.
        """
        scan = self._start
        while True:
            nl = self.buffer.find(b"\n", scan, self._end)
            if nl >= 0:
                start, self._start = self._start, nl + 1
                return _OVERSIZED if nl + 1 - start > self.limit else (start, nl + 1)
            if self._end - self._start > self.limit:
                self._skip_line()
                return _OVERSIZED
            scanned = self._end - self._start
            if self._eof or not self._fill():
                if self._start == self._end:
                    return None
                start, self._start = self._start, self._end
                return (start, self._end)
            scan = self._start + scanned

    def __iter__(self) -> LineReader:
        return self

    def __next__(self) -> bytes:
        if self.pending is not None:
            line, self.pending = self.pending, None
            return line
        span = self.next_span()
        if span is None:
            raise StopIteration
        if span == _OVERSIZED:
            return OVERSIZED_MARK.encode("utf-8") + b"\n"
        with memoryview(self.buffer) as view:
            return bytes(view[span[0] : span[1]])

    def drain(self) -> None:
        """Read (and hash) the rest of the file; the hashers are complete on return."""
        self._start = self._end = 0
        with memoryview(self.buffer) as view:
            while self._read(view):
                pass
        self._wait()

    def close(self) -> None:
        """End the hashing thread (after the chunk in flight)."""
        self._pool.shutdown(wait=True)
        self._hashing = None


def _ensure_csv_limit(limit: int) -> None:
    if csv.field_size_limit() < limit:
        csv.field_size_limit(limit)


def split_tabs(buf: bytes | bytearray, start: int, end: int) -> list[Field]:
    """Split ``buf[start:end]`` on tabs, into one ``bytes`` copy per field.

    ``find`` scans with ``memchr``, several times faster than ``bytes.split`` on a single
    byte, which checks byte by byte: on a 270 KB row (the base64 image field) this takes
    10-20 us instead of 70-80. Each field is copied once, straight from the read buffer.
    """
    fields: list[Field] = []
    find = buf.find
    with memoryview(buf) as view:
        while (tab := find(b"\t", start, end)) >= 0:
            fields.append(bytes(view[start:tab]))
            start = tab + 1
        fields.append(bytes(view[start:end]))
    return fields


def read_records(lines: LineReader) -> Iterator[list[Field] | Malformed]:
    """Yield the records of a tab-separated file (blank lines skipped).

    Args:
        lines: the file's lines; its limit is the longest physical line accepted.
    """
    limit = lines.limit
    _ensure_csv_limit(limit + 1)
    reader = csv.reader(
        (line.decode("utf-8", "surrogateescape") for line in lines), delimiter="\t", quotechar='"', strict=False
    )
    while (span := lines.next_span()) is not None:
        if span == _OVERSIZED:
            yield Malformed(f"line longer than {limit} bytes")
            continue
        start, end = span
        buf = lines.buffer
        if buf.find(b'"', start, end) < 0:
            if end > start and buf[end - 1] == 0x0A:
                end -= 2 if end - start >= 2 and buf[end - 2] == 0x0D else 1
            if end > start:
                yield split_tabs(buf, start, end)
            continue
        with memoryview(buf) as view:
            lines.pending = bytes(view[start : span[1]])
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
